"""Cancels of running jobs reach their handlers: the row is the truth, so a worker asks it.

Twice a second, while handlers run, one indexed query per worker process asks which of their
jobs were cancelled, whichever process took the request; nothing is asked while it is idle.
"""

from __future__ import annotations

import structlog

from jobqueue.log_throttle import LogThrottle
from jobqueue.service import JobService
from jobqueue.worker.executor import JobExecutor

log = structlog.get_logger(__name__)

CHECK_INTERVAL_S = 0.5
"""How often a busy worker looks for cancels: a handler hears of one within a second."""


class CancelWatch:
    """Tells the executor which of its running jobs were cancelled (``check_once`` runs every
    CHECK_INTERVAL_S)."""

    def __init__(self, service: JobService, executor: JobExecutor, grace_s: float) -> None:
        self.service = service
        self.executor = executor
        self.grace_s = grace_s
        self._failures = LogThrottle()

    async def check_once(self) -> None:
        """One look at the running jobs; a failure waits for the next."""
        running = self.executor.running()
        if not running:
            return
        try:
            cancelled = await self.service.cancelled_among(running)
        except Exception as exc:
            failed = "could not look for cancelled jobs; will try again"
            self._failures.log(type(exc).__name__, log.warning, failed, error=str(exc))
            return
        for job_id in cancelled:
            self.executor.cancel(job_id, self.grace_s)
