"""Progress reports from running handlers, written together: a handler may report as often as
it likes, the database sees at most one statement per interval for the whole process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from uuid import UUID

import structlog

from jobqueue.domain.jobs import ProgressReport
from jobqueue.log_throttle import LogThrottle
from jobqueue.service import JobService

log = structlog.get_logger(__name__)

FLUSH_INTERVAL_S = 0.25
"""Shortest time between two writes of progress by one worker process."""


class ProgressWriter:
    """Keeps each job's latest report and writes what is new at most every interval."""

    def __init__(self, service: JobService, interval_s: float = FLUSH_INTERVAL_S) -> None:
        self.service = service
        self.interval_s = interval_s
        self._latest: dict[UUID, ProgressReport] = {}
        self._flushing: asyncio.Task[None] | None = None
        self._last_flush = 0.0
        self._failures = LogThrottle()

    def report(self, report: ProgressReport) -> None:
        """Take ``report`` (on the event loop's thread); written within the interval."""
        self._latest[report.job_id] = report
        if self._flushing is None or self._flushing.done():
            wait = max(0.0, self._last_flush + self.interval_s - time.monotonic())
            self._flushing = asyncio.get_running_loop().create_task(self._flush_after(wait))

    def reporter(self) -> Callable[[ProgressReport], None]:
        """``report`` callable from any thread (a plain-function handler runs in its own)."""
        loop = asyncio.get_running_loop()

        def report_from_any_thread(report: ProgressReport) -> None:
            loop.call_soon_threadsafe(self.report, report)

        return report_from_any_thread

    async def close(self) -> None:
        """Write what is waiting now, then stop."""
        if self._flushing is not None and not self._flushing.done():
            self._flushing.cancel()
            await asyncio.gather(self._flushing, return_exceptions=True)
        await self._flush()

    async def _flush_after(self, wait: float) -> None:
        await asyncio.sleep(wait)
        await self._flush()

    async def _flush(self) -> None:
        reports, self._latest = list(self._latest.values()), {}
        self._last_flush = time.monotonic()
        if not reports:
            return
        try:
            await self.service.report_progress(reports)
        except Exception as exc:  # progress is advisory: the job goes on
            failed = "progress not written; the next report tries again"
            self._failures.log(type(exc).__name__, log.warning, failed, error=str(exc))
