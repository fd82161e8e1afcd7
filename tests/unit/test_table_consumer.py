"""The jobs table as the queue: the consumer over the in-memory store, with a fake runner.

Nothing here sleeps and hopes: each test awaits a condition (``Signal.until``) with a bound,
and the poll interval is a minute, so a job that starts within that bound was started by an
event (a publish, a finished job, a due time), never by the poll.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from jobqueue.domain.attempts import Attempt
from jobqueue.domain.jobs import Job, JobStatus, JSONValue, NewJob, utcnow
from jobqueue.domain.retry import RetryPolicy
from jobqueue.queue.table import ClaimSettings, TableBroker, TableConsumer
from jobqueue.service import JobService
from jobqueue.store.memory import InMemoryJobStore
from tests.unit.doubles import FakeRunner, Signal
from tests.unit.factories import make_job

POLL_S = 60.0
"""Longer than any test: a job that starts did not wait for the poll."""


class ObservedStore(InMemoryJobStore):
    """Records the consumer's claims, renewals and releases, and signals each."""

    def __init__(self, signal: Signal) -> None:
        super().__init__()
        self.signal = signal
        self.claims: list[int] = []
        """How many jobs each claim took."""
        self.max_held = 0
        """The most jobs processing (under a lease) right after a claim."""
        self.renewals = 0
        self.due_checks = 0
        """How often an idle consumer asked when the next job is due (right before it sleeps)."""
        self.released: list[tuple[UUID, float]] = []
        """Each job handed back, with the loop's time."""
        self.complete_delay_s = 0.0
        """How long writing a completion takes (a database round trip)."""

    async def claim(
        self, owner: str, limit: int, lease_until: datetime, types: Sequence[str] | None = None
    ) -> list[Job]:
        jobs = await super().claim(owner, limit, lease_until, types)
        self.claims.append(len(jobs))
        held = (await self.count_by_status()).get(JobStatus.PROCESSING, 0)
        self.max_held = max(self.max_held, held)
        self.signal.notify()
        return jobs

    async def renew(self, owner: str, job_ids: Sequence[UUID], lease_until: datetime) -> set[UUID]:
        held = await super().renew(owner, job_ids, lease_until)
        self.renewals += 1
        self.signal.notify()
        return held

    async def complete(self, job: Job, attempt: Attempt, result: JSONValue = None) -> Job | None:
        if self.complete_delay_s:
            await asyncio.sleep(self.complete_delay_s)
        return await super().complete(job, attempt, result)

    async def next_run_at(self, types: Sequence[str] | None = None) -> datetime | None:
        due = await super().next_run_at(types)
        self.due_checks += 1
        self.signal.notify()
        return due

    async def release(self, job: Job) -> Job | None:
        released = await super().release(job)
        self.released.append((job.id, asyncio.get_running_loop().time()))
        self.signal.notify()
        return released


class Setup:
    """A store, a runner and a table consumer over them, as a worker process wires them."""

    def __init__(
        self,
        concurrency: int,
        prefetch: int,
        *,
        lease: timedelta = timedelta(seconds=30),
        job_types: Sequence[str] | None = None,
    ) -> None:
        self.signal = Signal()
        self.store = ObservedStore(self.signal)
        self.runner = FakeRunner(self.store, self.signal)
        claims = ClaimSettings("w1", lease, POLL_S, prefetch, job_types)
        self.broker = TableBroker(self.store, claims)
        self.consumer = TableConsumer(
            self.store, self.runner, concurrency, claims, self.broker.wakeup
        )
        self.service = JobService(self.store, self.broker, RetryPolicy(), known_types=None)

    async def insert(self, count: int, **fields: Any) -> list[Job]:
        """``count`` pending jobs, oldest first (so claimed in this order)."""
        start = utcnow()
        jobs = [
            make_job(created_at=start + timedelta(microseconds=n), updated_at=start, **fields)
            for n in range(count)
        ]
        await self.store.insert(jobs)
        return jobs

    async def status(self, job: Job) -> tuple[JobStatus, int]:
        """The stored job's status and attempts."""
        stored = await self.store.get(job.id)
        assert stored is not None
        return stored.status, stored.attempts

    @asynccontextmanager
    async def running(self) -> AsyncIterator[asyncio.Task[None]]:
        """The consumer running; stopped (grace 0) and awaited at the end if still running."""
        task = asyncio.create_task(self.consumer.run())
        try:
            yield task
        finally:
            self.runner.open_all()
            self.consumer.stop(0)
            await asyncio.wait_for(task, 2)


async def test_at_most_concurrency_handlers_run_and_prefetch_claims_ahead() -> None:
    setup = Setup(concurrency=3, prefetch=4)
    jobs = await setup.insert(20)
    runner = setup.runner
    async with setup.running():
        await setup.signal.until(lambda: len(runner.started) == 3)
        assert [job.id for job in runner.started] == [job.id for job in jobs[:3]]
        assert setup.store.claims == [7]  # the slots and the buffer, in one claim
        assert len(setup.consumer.buffer) == 4
        assert sorted(setup.consumer.held()) == sorted(job.id for job in jobs[:7])
        assert await setup.status(jobs[7]) == (JobStatus.PENDING, 0)

        runner.open(jobs[0].id)  # a finished job's slot refills from the buffer
        await setup.signal.until(lambda: len(runner.started) == 4)
        assert runner.started[3].id == jobs[3].id

        runner.open_all()
        await setup.signal.until(lambda: len(runner.completed) == 20)
    assert runner.max_running == 3
    assert setup.store.max_held == 7
    assert setup.consumer.held() == []
    assert await setup.store.count_by_status() == {JobStatus.COMPLETED: 20}


async def test_without_prefetch_only_the_slots_are_claimed() -> None:
    setup = Setup(concurrency=2, prefetch=0)
    await setup.insert(5)
    async with setup.running():
        await setup.signal.until(lambda: len(setup.runner.started) == 2)
        assert setup.store.claims == [2]
        setup.runner.open_all()
        await setup.signal.until(lambda: len(setup.runner.completed) == 5)
    assert setup.runner.max_running == 2
    assert setup.store.max_held == 2


async def test_a_published_job_starts_at_once_not_at_the_next_poll() -> None:
    setup = Setup(concurrency=2, prefetch=2)
    setup.runner.open_all()
    async with setup.running():
        await setup.signal.until(lambda: setup.store.due_checks >= 1)  # idle: sleeps a minute
        job, _created = await setup.service.create(NewJob("email"))  # publishes to the broker
        await setup.signal.until(lambda: len(setup.runner.completed) == 1, timeout_s=2.0)
        assert setup.runner.completed[0].id == job.id


async def test_a_delayed_job_starts_at_its_time_not_at_the_next_poll() -> None:
    setup = Setup(concurrency=2, prefetch=2)
    setup.runner.open_all()
    loop = asyncio.get_running_loop()
    async with setup.running():
        await setup.signal.until(lambda: setup.store.due_checks >= 1)  # idle: sleeps a minute
        published = loop.time()
        run_at = utcnow() + timedelta(milliseconds=200)
        await setup.service.create(NewJob("email", run_at=run_at))
        await setup.signal.until(lambda: len(setup.runner.started) == 1, timeout_s=2.0)
        assert utcnow() >= run_at
        assert loop.time() - published < 2.0


async def test_stop_hands_back_buffered_jobs_and_running_ones_after_the_grace() -> None:
    setup = Setup(concurrency=2, prefetch=3)
    finishing, stuck, *buffered = await setup.insert(5)
    runner, store = setup.runner, setup.store
    loop = asyncio.get_running_loop()
    async with setup.running() as run:
        await setup.signal.until(lambda: len(runner.started) == 2)
        grace_s = 0.3
        stopped_at = loop.time()
        setup.consumer.stop(grace_s)
        # The buffer goes back at once; running jobs keep running meanwhile.
        await setup.signal.until(lambda: len(store.released) == 3)
        assert [job_id for job_id, _at in store.released] == [job.id for job in buffered]
        for job in buffered:
            assert await setup.status(job) == (JobStatus.PENDING, 0)
        assert runner.running == 2
        runner.open(finishing.id)  # finishes within the grace
        await asyncio.wait_for(run, 2)
    assert [job.id for job in runner.completed] == [finishing.id]
    assert [job.id for job in runner.cancelled] == [stuck.id]
    assert await setup.status(finishing) == (JobStatus.COMPLETED, 1)
    assert await setup.status(stuck) == (JobStatus.PENDING, 0)
    stuck_released_at = dict(store.released)[stuck.id]
    assert stuck_released_at - stopped_at >= grace_s - 0.01
    assert len(runner.started) == 2  # nothing started once stopping
    assert await setup.store.count_by_status() == {
        JobStatus.PENDING: 4,
        JobStatus.COMPLETED: 1,
    }


async def test_stop_returns_at_once_when_running_jobs_finish_early() -> None:
    setup = Setup(concurrency=1, prefetch=0)
    (job,) = await setup.insert(1)
    loop = asyncio.get_running_loop()
    async with setup.running() as run:
        await setup.signal.until(lambda: len(setup.runner.started) == 1)
        setup.consumer.stop(30)
        started = loop.time()
        setup.runner.open(job.id)
        await asyncio.wait_for(run, 2)
        assert loop.time() - started < 2
    assert await setup.status(job) == (JobStatus.COMPLETED, 1)
    assert setup.store.released == []


async def test_leases_are_renewed_while_held_and_a_lost_one_is_not_run() -> None:
    setup = Setup(concurrency=1, prefetch=2, lease=timedelta(milliseconds=300))
    first, kept, taken = await setup.insert(3)
    store, runner = setup.store, setup.runner
    async with setup.running():
        await setup.signal.until(lambda: len(runner.started) == 1)
        claimed = await store.get(first.id)
        assert claimed is not None
        # Another worker takes a buffered job over (its lease had run out, say).
        buffered = await store.get(taken.id)
        assert buffered is not None
        assert await store.release(buffered)
        [retaken] = await store.claim("w2", 1, utcnow() + timedelta(seconds=30))
        assert retaken.id == taken.id
        await setup.signal.until(lambda: store.renewals >= 2)
        renewed = await store.get(first.id)
        assert renewed is not None
        assert claimed.lease_expires_at is not None
        assert renewed.lease_expires_at is not None
        assert renewed.lease_expires_at > claimed.lease_expires_at
        assert taken.id not in setup.consumer.held()
        runner.open_all()
        await setup.signal.until(lambda: len(runner.completed) == 2)
    assert [job.id for job in runner.started] == [first.id, kept.id]
    assert await setup.status(taken) == (JobStatus.PROCESSING, 1)


async def test_only_the_types_with_handlers_are_claimed() -> None:
    setup = Setup(concurrency=2, prefetch=2, job_types=["email"])
    await setup.insert(2, type="report")
    (email,) = await setup.insert(1, type="email")
    setup.runner.open_all()
    async with setup.running():
        await setup.signal.until(lambda: len(setup.runner.completed) == 1)
    assert [job.id for job in setup.runner.started] == [email.id]


async def test_an_idle_consumer_does_not_spin_on_a_due_job_of_another_type() -> None:
    setup = Setup(concurrency=2, prefetch=2, job_types=["email"])
    await setup.insert(1, type="report", next_run_at=utcnow() - timedelta(seconds=1))
    async with setup.running():
        await asyncio.sleep(0.3)  # measuring that nothing happens takes a while
    assert len(setup.store.claims) <= 3


async def test_a_written_outcome_frees_its_room_at_once() -> None:
    # Capacity 1: the next claim waits for the first outcome to be written, and only the
    # end of that write can wake the consumer (the poll interval is a minute).
    setup = Setup(concurrency=1, prefetch=0)
    setup.store.complete_delay_s = 0.02  # a database round trip: the consumer waits first
    await setup.insert(3)
    setup.runner.open_all()
    async with setup.running():
        await setup.signal.until(lambda: len(setup.runner.completed) == 3)
    assert setup.store.claims == [1, 1, 1]
