"""Limits per job type that hold across every worker process sharing a database."""

from __future__ import annotations

from dataclasses import dataclass

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
