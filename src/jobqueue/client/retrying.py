"""When a call is sent again, and after how long: the same rule for both clients.

A call is sent again after a failure that may pass (no connection, a lost answer, a 503)
only if sending it twice cannot do twice what it asks. Reads are safe; so are creates, which
carry an idempotency key, so that a second send returns the job the first one made. Other
calls (retry, cancel, update, delete, create without a key) are sent again only when the
connection was never made, so the server cannot have seen them.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

RETRIED_STATUSES = frozenset({502, 503, 504})
"""Answers of a server or dependency that is down for now (proxies answer 502 and 504)."""
NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Transport errors raised before any byte of the request left."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """At most ``retries`` further tries, waiting ``first_delay`` seconds, doubling each time
    up to ``max_delay``."""

    retries: int = 3
    first_delay: float = 0.2
    max_delay: float = 5.0

    def delay(self, retry: int) -> float:
        """The wait before further try number ``retry`` (1 for the first)."""
        return float(min(self.max_delay, self.first_delay * 2 ** (retry - 1)))


class RetryState:
    """The tries of one call so far; says whether and when to send it again."""

    def __init__(self, policy: RetryPolicy, repeatable: bool) -> None:
        """``repeatable``: sending the call twice does what sending it once does."""
        self.policy = policy
        self.repeatable = repeatable
        self.retries = 0

    def after_error(self, error: httpx.TransportError) -> float | None:
        """The wait before the next try after ``error``, or None to give up."""
        if not (self.repeatable or isinstance(error, NEVER_SENT)):
            return None
        return self._next()

    def after_status(self, status: int) -> float | None:
        """The wait before the next try after an answer with ``status``, or None to keep it."""
        if status not in RETRIED_STATUSES or not self.repeatable:
            return None
        return self._next()

    def _next(self) -> float | None:
        if self.retries >= self.policy.retries:
            return None
        self.retries += 1
        return self.policy.delay(self.retries)
