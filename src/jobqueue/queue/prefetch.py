"""How far ahead of its handler slots a worker fetches: wide under a backlog, narrow at idle."""

from __future__ import annotations


class PrefetchWindow:
    """Jobs fetched beyond the handler slots, adapted to what the last fetches found.

    bullmq's worker sends a fetch for every free place in its window as soon as one job
    arrives, so a wide window costs an idle worker a burst of empty fetches per job. Under a
    backlog every fetch finds a job and a wide window makes bigger batches. So the window
    doubles from ``low`` up to ``high`` while fetches keep finding jobs, and drops back to
    ``low`` at the first batch that found the queue empty.
    """

    def __init__(self, low: int, high: int) -> None:
        """``high`` below ``low`` is taken as ``low``: the window never narrows below it."""
        self.low = low
        """The prefetch at idle (WORKER_PREFETCH)."""
        self.high = max(low, high)
        """The widest prefetch (WORKER_PREFETCH_MAX)."""
        self.size = low
        """The prefetch now."""

    def observe(self, asked: int, found: int) -> int:
        """Adapt to one batch of ``asked`` fetches of which ``found`` brought a job; the new
        size."""
        if found < asked:
            self.size = self.low
        elif asked > 0:
            self.size = min(self.high, max(1, self.size) * 2)
        return self.size
