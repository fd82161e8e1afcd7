"""Limits per job type that hold across every worker process sharing a database."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

RATE_WINDOW_S = 1.0
"""``rate`` counts the starts of the last second."""


@dataclass(frozen=True, slots=True)
class TypeLimit:
    """At most ``concurrency`` jobs of a type running at once, and at most ``rate`` started per
    second, over all worker processes; None leaves that one unlimited."""

    concurrency: int | None = None
    rate: int | None = None

    def __post_init__(self) -> None:
        if self.concurrency is not None and self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency}")
        if self.rate is not None and self.rate < 1:
            raise ValueError(f"rate must be at least 1 start per second, got {self.rate}")

    def room(self, running: int, started_lately: int) -> int:
        """How many more may start now, given those running and those started in the last
        second (a large number when neither is limited)."""
        rooms = [1 << 30]
        if self.concurrency is not None:
            rooms.append(self.concurrency - running)
        if self.rate is not None:
            rooms.append(self.rate - started_lately)
        return max(0, min(rooms))


class Deferrals:
    """When the deliveries that their type's limit held back look for room again (the Redis
    mode, where BullMQ delivers jobs without knowing the limits).

    Each is due ``retry`` later at the soonest. A type with a rate also spaces them ``1 / rate``
    apart, in the order they were held back, so that a backlog comes back about as fast as
    its type may start jobs. Without it, all of a backlog came back every ``retry``: at a rate
    of 5 a second, a backlog of 10,000 jobs made 20,000 refusals a second.
    """

    def __init__(self, limits: Mapping[str, TypeLimit], retry: timedelta) -> None:
        self.limits = limits
        self.retry = retry
        self._next: dict[str, datetime] = {}

    def due(self, job_type: str, now: datetime) -> datetime:
        """When a job of ``job_type``, held back ``now``, looks for room again."""
        soonest = now + self.retry
        limit = self.limits.get(job_type)
        if limit is None or limit.rate is None:
            return soonest
        due = max(soonest, self._next.get(job_type, soonest))
        self._next[job_type] = due + timedelta(seconds=RATE_WINDOW_S / limit.rate)
        return due
