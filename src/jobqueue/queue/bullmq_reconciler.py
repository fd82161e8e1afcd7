"""Redis mode: give every runnable row a live queue entry again (fault 2 of the Node service).

The row is committed before its BullMQ job is added, so a crash in between, a Redis outage
or a flushed Redis leaves pending rows that nothing will ever run. Every
RECONCILE_INTERVAL_MS the reconciler looks at up to RECONCILE_BATCH pending rows that have not
changed for that long and re-adds the BullMQ job of each one that has none. The BullMQ job id
is the row id, so doing it twice, or on several workers at once, still leaves one job.

Rounds page through the pending rows (a cursor that wraps around), so a backlog of queued
rows cannot hide a missing one behind it: a full sweep takes pending / RECONCILE_BATCH rounds.

It also covers running jobs whose trigger is gone: a processing row whose lease ran out while
BullMQ holds no live job for it (Redis flushed, the stalled-job limit reached, an outcome that
could not be written) gets the table mode's treatment, a failed attempt with LEASE_EXPIRED,
and so another attempt or the DLQ.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from typing import Protocol, runtime_checkable
from uuid import UUID

import structlog

from jobqueue.config import Settings
from jobqueue.domain.jobs import Job, JobFilter, JobStatus, job_fields, utcnow
from jobqueue.log_throttle import LogThrottle
from jobqueue.queue.base import Repairs

log = structlog.get_logger(__name__)


@runtime_checkable
class TriggeredBroker(Protocol):
    """A queue that keeps its own entry per job beside the row (BullMQ), which can go missing."""

    async def live_job_ids(self, job_ids: Sequence[UUID]) -> set[UUID]:
        """The ids among ``job_ids`` whose queue entry is waiting, delayed or running."""
        ...

    async def publish(self, jobs: Sequence[Job]) -> None:
        """(Re-)enqueue pending jobs; a leftover finished entry is replaced."""
        ...


class Reconciler:
    """Periodically re-enqueues rows that the queue lost; bounded work per round."""

    def __init__(self, service: Repairs, broker: TriggeredBroker, settings: Settings) -> None:
        self.service = service
        self.broker = broker
        self.interval = timedelta(milliseconds=settings.reconcile_interval_ms)
        self.batch = settings.reconcile_batch
        self._offset = 0
        self._failures = LogThrottle()

    async def run(self) -> None:
        """Reconcile every interval until cancelled; an outage only delays the next round."""
        while True:
            await asyncio.sleep(self.interval.total_seconds())
            try:
                await self.reconcile_once()
            except Exception as exc:
                # Redis or the database is down: the rows stay as they are, try next round.
                failed = "reconciliation failed; will try again"
                self._failures.log(type(exc).__name__, log.warning, failed, error=str(exc))

    async def reconcile_once(self) -> int:
        """One round; returns how many jobs were given a queue entry again."""
        repaired = await self._requeue_pending() + await self._recover_lost_runs()
        dead_letters = await self.service.queue_dead_letters(self.batch)
        if dead_letters:
            log.warning("reconciler wrote dead letters missing from job-dlq", written=dead_letters)
        if repaired:
            log.warning("reconciler re-enqueued jobs missing from the queue", repaired=repaired)
        else:
            log.debug("reconciler found every job queued")
        return repaired

    async def _requeue_pending(self) -> int:
        missing = await self._without_live_entry(await self._stale_pending_page())
        await self.broker.publish(missing)
        for job in missing:
            log.info("pending job had no queue entry; enqueued again", **job_fields(job))
        return len(missing)

    async def _stale_pending_page(self) -> list[Job]:
        """The next page of pending rows, those unchanged for a whole interval only: a row
        just written is being published by the request that wrote it."""
        query = JobFilter(status=JobStatus.PENDING, limit=self.batch, offset=self._offset)
        page = await self.service.list_jobs(query)
        self._offset = 0 if len(page) < self.batch else self._offset + len(page)
        cutoff = utcnow() - self.interval
        return [job for job in page if job.updated_at < cutoff]

    async def _recover_lost_runs(self) -> int:
        expired = await self.service.expired_runs(self.batch)
        lost = await self._without_live_entry(expired)
        requeue: list[Job] = []
        for job in lost:
            recorded = await self.service.record_lost_attempt(job)
            if recorded is not None and recorded.status is JobStatus.PENDING:
                requeue.append(recorded)
        await self.broker.publish(requeue)
        return len(lost)

    async def _without_live_entry(self, jobs: Sequence[Job]) -> list[Job]:
        if not jobs:
            return []
        live = await self.broker.live_job_ids([job.id for job in jobs])
        return [job for job in jobs if job.id not in live]
