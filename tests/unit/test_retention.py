"""Retention in the worker: finished jobs older than the setting go, the rest stay."""

from __future__ import annotations

from datetime import datetime, timedelta

from jobqueue.domain.jobs import NewJob, utcnow
from jobqueue.domain.outcome import Succeeded
from jobqueue.domain.retry import RetryPolicy
from jobqueue.service import JobService
from jobqueue.store.memory import InMemoryJobStore
from jobqueue.worker.retention import Retention
from tests.unit.doubles import RecordingBroker


async def finished_jobs(count: int) -> JobService:
    store = InMemoryJobStore()
    service = JobService(store, RecordingBroker(), RetryPolicy(3, 1000), None)
    for _ in range(count):
        await service.create(NewJob("email"))
    for job in await store.claim("w1", count, utcnow() + timedelta(seconds=30)):
        await service.record_outcome(job, Succeeded())
    return service


async def test_a_pass_deletes_what_finished_before_the_retention_in_batches() -> None:
    service = await finished_jobs(7)
    await service.create(NewJob("email"))  # pending: stays
    assert await Retention(service, timedelta(hours=1)).prune_once() == 0
    assert await service.prune(timedelta(0), batch=3) == 7  # three batches
    stats = await service.stats()
    assert (stats["completed"], stats["pending"]) == (0, 1)


class DownStore(InMemoryJobStore):
    """A database that does not answer."""

    async def prune(self, before: datetime, limit: int) -> int:
        raise OSError("database down")


async def test_a_failed_pass_is_logged_and_waits_for_the_next() -> None:
    store = DownStore()
    service = JobService(store, RecordingBroker(), RetryPolicy(3, 1000), None)
    assert await Retention(service, timedelta(0)).prune_once() == 0


async def test_a_parent_stays_while_a_child_may_still_read_its_result() -> None:
    store = InMemoryJobStore()
    service = JobService(store, RecordingBroker(), RetryPolicy(3, 1000), None)
    early, _ = await service.create(NewJob("email"))
    late, _ = await service.create(NewJob("email", run_at=utcnow() + timedelta(hours=1)))
    child, _ = await service.create(NewJob("email", depends_on=(early.id, late.id)))
    (claimed,) = await store.claim("w1", 1, utcnow() + timedelta(seconds=30))
    assert claimed.id == early.id
    await service.record_outcome(claimed, Succeeded())
    assert await service.prune(timedelta(0)) == 0  # the child waits for "late"
    await service.delete(late.id)  # cancels the child, which then lets its parents go
    assert await service.prune(timedelta(0)) == 2
    assert [await store.get(job.id) for job in (early, child)] == [None, None]
