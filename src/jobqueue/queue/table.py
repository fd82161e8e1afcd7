"""The jobs table as the queue: workers claim due rows under a renewable lease.

A consumer claims jobs in batches into a local buffer ahead of its handler slots (prefetch),
so a finished job's slot is refilled at once from the buffer and a claim is one statement
for many jobs. Nothing on this path sleeps on a timer: a new job in this process wakes the
consumer directly, one in another process through LISTEN/NOTIFY (PostgreSQL), and the poll
interval only bounds how late a job made by another process on SQLite can start.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from uuid import UUID

import structlog

from jobqueue.domain.jobs import Job, job_fields, utcnow
from jobqueue.domain.limits import TypeLimit
from jobqueue.domain.outcome import Outcome
from jobqueue.queue.base import Broker, Consumer, JobRunner, Leases, Repairs
from jobqueue.store.base import StoreUnavailableError

log = structlog.get_logger(__name__)

_MAX_ERROR_BACKOFF_S = 5.0


@dataclass(frozen=True, slots=True)
class ClaimSettings:
    """How a table consumer claims: who it is, for how long, how far ahead."""

    owner: str
    """Who holds the lease (host, process, random part)."""
    lease: timedelta
    """A claimed job's lease; renewed every third of it while the job is held."""
    poll_interval_s: float
    """Longest sleep of an idle consumer before it looks for jobs again."""
    prefetch: int
    """Jobs claimed ahead of the handler slots."""
    job_types: Sequence[str] | None = None
    """Claim only these types (the ones this process has handlers for); None: any."""
    limits: Mapping[str, TypeLimit] = field(default_factory=dict)
    """Types with concurrency or rate limits over all processes: each is claimed on its own,
    within what its limit leaves."""

    @property
    def unlimited_types(self) -> Sequence[str] | None:
        """The types claimed together, without a limit."""
        if self.job_types is None:
            return None
        return [job_type for job_type in self.job_types if job_type not in self.limits]


class TableBroker(Broker):
    """No second system: publishing a job only wakes this process's idle consumer."""

    name = "jobs-table"

    def __init__(self, leases: Leases, claims: ClaimSettings) -> None:
        self.leases = leases
        self.claims = claims
        self.wakeup = asyncio.Event()
        self._others: list[Callable[[], None]] = []

    async def publish(self, jobs: Sequence[Job]) -> None:
        if jobs:
            self.wake()
            for wake_others in self._others:
                wake_others()

    def wake(self) -> None:
        self.wakeup.set()

    def also_wake(self, others: Callable[[], None]) -> None:
        self._others.append(others)

    async def withdraw(self, job_id: UUID) -> None:
        """Nothing to do: a deleted or cancelled row can no longer be claimed."""

    def consumer(self, runner: JobRunner, concurrency: int) -> Consumer:
        return TableConsumer(self.leases, runner, concurrency, self.claims, self.wakeup)

    async def recovery(self, repairs: Repairs) -> None:
        """Every half lease: a dead worker's jobs get a failed attempt (and so a retry)."""
        while True:
            try:
                await repairs.recover_expired()
            except StoreUnavailableError as exc:
                log.error("lease recovery failed; will try again", error=str(exc))
            except Exception:
                log.exception("lease recovery failed; will try again")
            await asyncio.sleep(self.claims.lease.total_seconds() / 2)


class TableConsumer(Consumer):
    """Claims due jobs in batches, runs them, keeps their leases alive, hands them back."""

    def __init__(
        self,
        leases: Leases,
        runner: JobRunner,
        concurrency: int,
        claims: ClaimSettings,
        wakeup: asyncio.Event,
    ) -> None:
        self.leases = leases
        self.runner = runner
        self.concurrency = concurrency
        self.claims = claims
        self.wakeup = wakeup
        self.buffer: collections.deque[Job] = collections.deque()
        self.running: dict[UUID, tuple[Job, asyncio.Task[Outcome]]] = {}
        self.recording: dict[UUID, asyncio.Task[Job | None]] = {}
        self._unlimited = claims.unlimited_types  # computed once, not at every claim
        self._capacity = concurrency + claims.prefetch
        self._claim_at_least = max(1, claims.prefetch // 2)
        self._stopping = asyncio.Event()
        self._grace_s = 0.0
        self._error_backoff_s = 0.0
        self._lost: set[UUID] = set()
        """Running or recording jobs already reported lost (reported once, not each renewal)."""

    def stop(self, grace_s: float) -> None:
        self._grace_s = grace_s
        self._stopping.set()
        self.wakeup.set()

    async def run(self) -> None:
        renewer = asyncio.create_task(self._renew_leases(), name="jobqueue-lease-renewal")
        try:
            async with self.leases.listen(self.wakeup.set):
                while not self._stopping.is_set():
                    self.wakeup.clear()
                    more_due = await self._claim()
                    if not more_due:
                        await self._wait()
            await self._drain()
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer

    def held(self) -> list[UUID]:
        """Every job this consumer holds a lease on: buffered, running, being recorded."""
        return [*self.running, *self.recording, *(job.id for job in self.buffer)]

    async def _claim(self) -> bool:
        """Fill the buffer and the free slots; True when more jobs may be due right now."""
        # Outcomes being written still hold their rows.
        room = self._capacity - len(self.running) - len(self.recording) - len(self.buffer)
        if room < self._claim_at_least and (self.buffer or room <= 0):
            return False  # enough in hand: a finished job wakes us
        try:
            jobs = await self._claim_up_to(room)
        except Exception as exc:
            self._error_backoff_s = min(max(self._error_backoff_s * 2, 0.1), _MAX_ERROR_BACKOFF_S)
            log.error(
                "claim failed; will try again", error=str(exc), retry_in_s=self._error_backoff_s
            )
            return False
        self._error_backoff_s = 0.0
        self.buffer.extend(jobs)
        self._start_buffered()
        return len(jobs) == room and not self._stopping.is_set()

    async def _claim_up_to(self, room: int) -> list[Job]:
        """Limited types first (each within its limit), then the rest together."""
        owner, lease_until = self.claims.owner, utcnow() + self.claims.lease
        jobs: list[Job] = []
        for job_type, limit in self.claims.limits.items():
            if room > len(jobs):
                left = room - len(jobs)
                jobs += await self.leases.claim_limited(owner, job_type, limit, left, lease_until)
        unlimited = self._unlimited
        if room > len(jobs) and (unlimited is None or unlimited):
            jobs += await self.leases.claim(owner, room - len(jobs), lease_until, unlimited)
        return jobs

    def _start_buffered(self) -> None:
        while self.buffer and len(self.running) < self.concurrency:
            job = self.buffer.popleft()
            task = asyncio.create_task(self.runner.execute(job), name=f"job-{job.id}")
            self.running[job.id] = (job, task)
            task.add_done_callback(functools.partial(self._finished, job))

    def _finished(self, job: Job, task: asyncio.Task[Outcome]) -> None:
        """A handler returned: its slot takes the next job at once, while its outcome is
        written (outcomes written together share a transaction)."""
        self.running.pop(job.id, None)
        if not task.cancelled():  # a cancelled one is handed back by _drain
            recording = asyncio.create_task(self.runner.record(job, task.result()))
            self.recording[job.id] = recording
            recording.add_done_callback(functools.partial(self._recorded_one, job.id))
        if not self._stopping.is_set():
            self._start_buffered()
            self.wakeup.set()  # room in the buffer: maybe claim more

    def _recorded_one(self, job_id: UUID, _task: asyncio.Task[Job | None]) -> None:
        self.recording.pop(job_id, None)
        self._lost.discard(job_id)
        self.wakeup.set()  # its row no longer counts against the claim's room

    async def _wait(self) -> None:
        """Sleep until woken: a new job, a finished one, a stop, or the next due time."""
        timeout = self.claims.poll_interval_s
        if self._error_backoff_s:
            timeout = self._error_backoff_s
        elif not self.running and not self.buffer:
            timeout = await self._until_next_due(timeout)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wakeup.wait(), timeout)

    async def _until_next_due(self, ceiling: float) -> float:
        try:
            # A limited type's due job may have to wait for room: it is looked for at the
            # poll interval, so that a consumer does not spin on it.
            next_run_at = await self.leases.next_run_at(self._unlimited)
        except Exception:
            return ceiling
        if next_run_at is None:
            return ceiling
        return max(0.0, min(ceiling, (next_run_at - utcnow()).total_seconds()))

    async def _renew_leases(self) -> None:
        interval = self.claims.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(interval)
            ids = self.held()
            try:
                until = utcnow() + self.claims.lease
                still_held = await self.leases.renew(self.claims.owner, ids, until)
            except Exception as exc:
                log.error("lease renewal failed; will try again", error=str(exc))
                continue
            self._forget_lost(set(ids) - still_held)

    def _forget_lost(self, lost: set[UUID]) -> None:
        """Leases that ran out (the job ran elsewhere): buffered ones must not run here.
        A job that finished during the renewal is not lost either."""
        lost &= set(self.held())
        lost -= self._lost
        if not lost:
            return
        self.buffer = collections.deque(job for job in self.buffer if job.id not in lost)
        self._lost |= lost  # forgotten once recorded: running ones are still to be recorded
        log.warning("lost the lease of held jobs", job_ids=sorted(str(i) for i in lost))

    async def _drain(self) -> None:
        """Hand back buffered jobs; give running ones the grace period, then hand them back."""
        buffered, self.buffer = list(self.buffer), collections.deque()
        for job in buffered:
            await self._hand_back(job, quiet=True)
        if self.running:
            await self._finish_or_hand_back_running()
        await self._finish_recording()

    async def _finish_recording(self) -> None:
        """Outcomes being written are written before the process lets go of the store; one
        that the database refuses to take within the grace period is given up on (its job
        runs again after its lease)."""
        tasks = list(self.recording.values())
        if not tasks:
            return
        _done, unfinished = await asyncio.wait(tasks, timeout=max(self._grace_s, 1.0))
        for task in unfinished:
            task.cancel()
        if unfinished:
            log.warning("outcomes not recorded before the stop", jobs=len(unfinished))
        await asyncio.gather(*unfinished, return_exceptions=True)

    async def _finish_or_hand_back_running(self) -> None:
        tasks = [task for _job, task in self.running.values()]
        log.info("waiting for running jobs", running=len(tasks), grace_s=self._grace_s)
        _done, unfinished = await asyncio.wait(tasks, timeout=self._grace_s)
        leftovers = [job for job, task in list(self.running.values()) if task in unfinished]
        for task in unfinished:
            task.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)
        for job in leftovers:
            await self._hand_back(job)

    async def _hand_back(self, job: Job, *, quiet: bool = False) -> None:
        try:
            released = await self.leases.release(job)
        except Exception as exc:
            log.error("job could not be handed back", **job_fields(job), error=str(exc))
            return
        if released is None:
            log.warning("job could not be handed back", **job_fields(job))
        elif not quiet:
            log.warning("job handed back unfinished", **job_fields(job))
