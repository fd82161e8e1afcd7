"""Recurring jobs: every worker process keeps every schedule, and each tick makes one job.

The job made at a tick carries the tick in its idempotency key, so the processes that all
keep the schedule still make one job per tick, whichever comes first. After downtime, the
latest missed tick is made once (if the tick before it had its job: the schedule was being
kept), never the whole backlog of ticks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

import structlog

from jobqueue.domain.jobs import NewJob, utcnow
from jobqueue.domain.schedules import Schedule
from jobqueue.log_throttle import LogThrottle
from jobqueue.service import JobService

log = structlog.get_logger(__name__)

MAX_SLEEP_S = 60.0
"""Longest sleep between two looks at the clock (a suspended machine, a changed clock)."""
RETRY_S = 1.0
"""Wait before making a tick's job again after the database refused it."""


class Scheduler:
    """Makes each schedule's job at each of its ticks."""

    def __init__(self, service: JobService, schedules: Sequence[Schedule]) -> None:
        self.service = service
        self.schedules = list(schedules)
        self._last: dict[str, datetime] = {}
        """Per job type: the latest tick whose job is made."""
        self._failures = LogThrottle()

    async def run(self) -> None:
        """Catch up once, then make each tick's job when it comes, until cancelled."""
        if not self.schedules:
            return
        await self.catch_up()
        while True:
            due_at = min(self._next(schedule) for schedule in self.schedules)
            wait = (due_at - utcnow()).total_seconds()
            await asyncio.sleep(min(MAX_SLEEP_S, max(0.0, wait)))
            if not await self.make_due():
                await asyncio.sleep(RETRY_S)

    async def catch_up(self) -> None:
        """At start: the latest tick of each schedule, if the tick before it had its job."""
        now = utcnow()
        for schedule in self.schedules:
            latest, before = schedule.ticks_before(now, 2)
            self._last[schedule.job_type] = latest
            try:
                kept = await self.service.keys_taken([schedule.key(before)])
                if kept:
                    await self._make(schedule, latest)
            except Exception as exc:
                self._complain(exc)

    async def make_due(self) -> bool:
        """Make the job of every schedule whose next tick has come (only the latest tick
        when several passed while the process slept); False when the database refused."""
        now = utcnow()
        for schedule in self.schedules:
            if self._next(schedule) > now:
                continue
            [tick] = schedule.ticks_before(now, 1)
            try:
                await self._make(schedule, tick)
            except Exception as exc:
                self._complain(exc)
                return False
            self._last[schedule.job_type] = tick
        return True

    def _next(self, schedule: Schedule) -> datetime:
        return schedule.next_tick(self._last.get(schedule.job_type) or utcnow())

    async def _make(self, schedule: Schedule, tick: datetime) -> None:
        new = NewJob(schedule.job_type, dict(schedule.payload), idempotency_key=schedule.key(tick))
        job, created = await self.service.create(new)
        if created:
            log.info(
                "scheduled job made", job_id=str(job.id), job_type=job.type, tick=tick.isoformat()
            )

    def _complain(self, exc: Exception) -> None:
        failed = "could not make a scheduled job; will try again"
        self._failures.log(type(exc).__name__, log.warning, failed, error=str(exc))
