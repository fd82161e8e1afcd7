"""The jobs table as the queue: workers claim due rows under a renewable lease."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import timedelta
from uuid import UUID

import structlog

from jobqueue.domain.jobs import Job, job_fields, utcnow
from jobqueue.queue.base import Broker, Consumer, JobRunner
from jobqueue.store.base import JobStore

log = structlog.get_logger(__name__)

_MAX_ERROR_BACKOFF_S = 5.0
_CLAIM_GAP_S = 0.005


class TableBroker(Broker):
    """No second system: publishing a job only wakes this process's idle consumer."""

    name = "jobs-table"

    def __init__(
        self,
        store: JobStore,
        *,
        owner: str,
        lease_ms: int,
        poll_interval_ms: int,
        job_types: Sequence[str] | None = None,
    ) -> None:
        """``job_types``: claim only these (the types this process has handlers for)."""
        self.store = store
        self.job_types = job_types
        self.owner = owner
        self.lease = timedelta(milliseconds=lease_ms)
        self.poll_interval_s = poll_interval_ms / 1000
        self.wakeup = asyncio.Event()

    async def publish(self, jobs: Sequence[Job]) -> None:
        if jobs:
            self.wakeup.set()

    async def withdraw(self, job_id: UUID) -> None:
        """Nothing to do: a deleted or cancelled row can no longer be claimed."""

    def consumer(self, runner: JobRunner, concurrency: int) -> Consumer:
        return TableConsumer(self, runner, concurrency)


class TableConsumer(Consumer):
    """Claims due jobs in batches, keeps their leases alive, and hands them back on stop."""

    def __init__(self, broker: TableBroker, runner: JobRunner, concurrency: int) -> None:
        self.broker = broker
        self.store = broker.store
        self.runner = runner
        self.concurrency = concurrency
        self.running: dict[UUID, tuple[Job, asyncio.Task[Job | None]]] = {}
        self._stopping = asyncio.Event()
        self._grace_s = 0.0
        self._error_backoff_s = 0.0
        self._last_claim = 0.0

    def stop(self, grace_s: float) -> None:
        self._grace_s = grace_s
        self._stopping.set()
        self.broker.wakeup.set()

    async def run(self) -> None:
        renewer = asyncio.create_task(self._renew_leases(), name="jobqueue-lease-renewal")
        try:
            async with self.store.listen(self.broker.wakeup.set):
                while not self._stopping.is_set():
                    await self._pace_claims()
                    self.broker.wakeup.clear()
                    idle = await self._claim_into_free_slots()
                    await self._wait(idle)
            await self._drain()
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer

    async def _pace_claims(self) -> None:
        """Leave at least _CLAIM_GAP_S between claims, so a burst of creates (each one a
        wake-up) is taken by one claim instead of racing the creates for the write lock."""
        loop = asyncio.get_running_loop()
        wait = self._last_claim + _CLAIM_GAP_S - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last_claim = loop.time()

    async def _claim_into_free_slots(self) -> bool:
        """Start as many due jobs as there are free slots; True when no slot could be filled."""
        free = self.concurrency - len(self.running)
        if free <= 0:
            return False
        try:
            lease_until = utcnow() + self.broker.lease
            jobs = await self.store.claim(
                self.broker.owner, free, lease_until, self.broker.job_types
            )
        except Exception as exc:
            self._error_backoff_s = min(max(self._error_backoff_s * 2, 0.1), _MAX_ERROR_BACKOFF_S)
            log.error(
                "claim failed; will try again", error=str(exc), retry_in_s=self._error_backoff_s
            )
            return True
        self._error_backoff_s = 0.0
        for job in jobs:
            self._start(job)
        return len(jobs) < free

    def _start(self, job: Job) -> None:
        task = asyncio.create_task(self.runner.handle(job), name=f"job-{job.id}")
        self.running[job.id] = (job, task)
        task.add_done_callback(lambda _task: self._finished(job.id))

    def _finished(self, job_id: UUID) -> None:
        self.running.pop(job_id, None)
        self.broker.wakeup.set()

    async def _wait(self, idle: bool) -> None:
        """Sleep until woken: a new job, a free slot, a stop, or the next due time."""
        timeout = self.broker.poll_interval_s
        if self._error_backoff_s:
            timeout = self._error_backoff_s
        elif idle:
            timeout = await self._until_next_due(timeout)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.broker.wakeup.wait(), timeout)

    async def _until_next_due(self, ceiling: float) -> float:
        try:
            next_run_at = await self.store.next_run_at()
        except Exception:
            return ceiling
        if next_run_at is None:
            return ceiling
        return max(0.0, min(ceiling, (next_run_at - utcnow()).total_seconds()))

    async def _renew_leases(self) -> None:
        interval = self.broker.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(interval)
            ids = list(self.running)
            try:
                held = await self.store.renew(self.broker.owner, ids, utcnow() + self.broker.lease)
            except Exception as exc:
                log.error("lease renewal failed; will try again", error=str(exc))
                continue
            # A job that finished during the renewal is no longer held, and not lost either.
            lost = [job_id for job_id in ids if job_id not in held and job_id in self.running]
            if lost:
                log.warning("lost the lease of running jobs", job_ids=[str(i) for i in lost])

    async def _drain(self) -> None:
        """Give running jobs the grace period, then cancel and hand back the rest."""
        if not self.running:
            return
        tasks = [task for _job, task in self.running.values()]
        log.info("waiting for running jobs", running=len(tasks), grace_s=self._grace_s)
        _done, unfinished = await asyncio.wait(tasks, timeout=self._grace_s)
        leftovers = [job for job, task in list(self.running.values()) if task in unfinished]
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)
        for job in leftovers:
            await self._hand_back(job)

    async def _hand_back(self, job: Job) -> None:
        released = await self.store.release(job)
        log.warning(
            "job handed back unfinished" if released else "job could not be handed back",
            **job_fields(job),
        )
