"""Repeated complaints logged at most once per interval, with a count of those left out.

During an outage every request and every retry loop meets the same error: one line per
interval says what a thousand would, keeps the log readable, and bounds its volume whatever
the request rate.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Hashable
from typing import Any

REPEAT_INTERVAL_S = 10.0
"""Shortest time between two lines about the same complaint."""


class LogThrottle:
    """Decides, per kind of complaint, whether this occurrence gets a log line."""

    def __init__(
        self,
        interval_s: float = REPEAT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock`` is injectable for tests."""
        self.interval_s = interval_s
        self._clock = clock
        self._logged_at: dict[Hashable, float] = {}
        self._left_out: Counter[Hashable] = Counter()

    def admit(self, key: Hashable) -> int | None:
        """None: leave this occurrence out (it is counted). Otherwise log it, and say how many
        occurrences of ``key`` were left out since its last line (the number returned)."""
        now = self._clock()
        last = self._logged_at.get(key)
        if last is not None and now - last < self.interval_s:
            self._left_out[key] += 1
            return None
        self._logged_at[key] = now
        return self._left_out.pop(key, 0)

    def log(self, key: Hashable, method: Callable[..., Any], event: str, **fields: Any) -> None:
        """``method(event, **fields)`` (a bound logger's ``error``, say) unless ``key`` was
        logged within the interval; the line says how many were left out before it
        (``repeats_not_logged``)."""
        left_out = self.admit(key)
        if left_out is not None:
            method(event, **fields, repeats_not_logged=left_out)
