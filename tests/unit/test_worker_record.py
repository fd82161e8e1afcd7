"""The worker keeps an attempt's outcome while the database is down and writes it once back."""

from __future__ import annotations

from datetime import timedelta

import pytest

from jobqueue.config import Settings
from jobqueue.domain.attempts import Attempt
from jobqueue.domain.jobs import Job, JobStatus, JSONValue, utcnow
from jobqueue.domain.outcome import Succeeded
from jobqueue.handlers.registry import HandlerRegistry
from jobqueue.queue.table import ClaimSettings, TableBroker
from jobqueue.service import JobService
from jobqueue.store.base import StoreUnavailableError
from jobqueue.store.memory import InMemoryJobStore
from jobqueue.worker import runner
from jobqueue.worker.executor import JobExecutor
from jobqueue.worker.runner import Worker
from tests.unit.doubles import RecordingBroker
from tests.unit.factories import make_job

OWNER = "worker-1"


class DownForAWhile(InMemoryJobStore):
    """Refuses ``outage`` completions as an unreachable database would, then works."""

    def __init__(self, outage: int) -> None:
        super().__init__()
        self.outage = outage
        self.tries = 0

    async def complete(self, job: Job, attempt: Attempt, result: JSONValue = None) -> Job | None:
        self.tries += 1
        if self.tries <= self.outage:
            raise StoreUnavailableError("PostgreSQL: ConnectionRefusedError")
        return await super().complete(job, attempt, result)


async def claimed_worker(store: InMemoryJobStore) -> tuple[Worker, Job]:
    settings = Settings()
    service = JobService(store, RecordingBroker(), settings.retry_policy, None)
    claims = ClaimSettings(OWNER, timedelta(seconds=30), poll_interval_s=1, prefetch=0)
    broker = TableBroker(store, claims)
    worker = Worker(service, broker, JobExecutor(HandlerRegistry(), settings), settings)
    await store.insert([make_job()])
    [job] = await store.claim(OWNER, 1, utcnow() + timedelta(seconds=30))
    return worker, job


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "_RECORD_RETRY_FIRST_S", 0.001)
    monkeypatch.setattr(runner, "_RECORD_RETRY_MAX_S", 0.004)


async def test_an_outcome_is_written_once_the_database_is_back() -> None:
    store = DownForAWhile(outage=5)
    worker, job = await claimed_worker(store)
    recorded = await worker.record(job, Succeeded())
    assert recorded is not None
    assert recorded.status is JobStatus.COMPLETED
    assert store.tries == 6


async def test_an_outcome_whose_lease_was_taken_meanwhile_is_dropped() -> None:
    store = DownForAWhile(outage=2)
    worker, job = await claimed_worker(store)
    await store.release(job)  # the lease ran out and the job went back: not ours any more
    assert await worker.record(job, Succeeded()) is None
    assert (await store.get(job.id)).status is JobStatus.PENDING  # type: ignore[union-attr]
