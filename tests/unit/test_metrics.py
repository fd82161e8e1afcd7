"""The counters the service keeps, and the gauges a scrape reads: no I/O."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from jobqueue.domain.jobs import NewJob, QueueState, utcnow
from jobqueue.domain.outcome import Failed, Outcome, Succeeded
from jobqueue.domain.retry import RetryPolicy
from jobqueue.metrics import MULTIPROCESS_DIR_ENV, JobMetrics, QueueStateCollector, exposition
from jobqueue.service import JobService
from jobqueue.store.memory import InMemoryJobStore
from tests.unit.doubles import RecordingBroker
from tests.unit.factories import make_job

LEASE = timedelta(seconds=30)


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


@pytest.fixture(autouse=True)
def in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test counts in this process's memory, whatever the environment says."""
    monkeypatch.delenv(MULTIPROCESS_DIR_ENV, raising=False)


@pytest.fixture
def store() -> InMemoryJobStore:
    return InMemoryJobStore()


@pytest.fixture
def service(store: InMemoryJobStore) -> JobService:
    policy = RetryPolicy(max_attempts=2, backoff_ms=1000)
    return JobService(store, RecordingBroker(), policy, known_types=None)


async def run_once(
    service: JobService, store: InMemoryJobStore, job_type: str, outcome: Outcome
) -> None:
    """Create a job of ``job_type``, claim it, and record ``outcome`` for its first attempt."""
    await service.create(NewJob(job_type))
    (job,) = await store.claim("w1", 1, utcnow() + LEASE, types=[job_type])
    assert await service.record_outcome(job, outcome) is not None


async def test_each_recorded_outcome_is_counted_by_type(
    service: JobService, store: InMemoryJobStore
) -> None:
    await run_once(service, store, "email", outcome=Succeeded(duration_ms=250))
    await run_once(service, store, "report", outcome=Failed("boom", duration_ms=250))
    await run_once(service, store, "audit", outcome=Failed("no", permanent=True, duration_ms=5))
    registry = service.metrics.registry
    assert sample(registry, "jobqueue_jobs_created_total", type="email") == 1
    assert sample(registry, "jobqueue_jobs_completed_total", type="email") == 1
    assert sample(registry, "jobqueue_jobs_retried_total", type="report") == 1
    assert sample(registry, "jobqueue_jobs_failed_total", type="report") is None
    assert sample(registry, "jobqueue_jobs_failed_total", type="audit") == 1
    assert sample(registry, "jobqueue_attempt_duration_seconds_sum", type="email") == 0.25
    assert sample(registry, "jobqueue_attempt_duration_seconds_count", type="audit") == 1
    bucket = {"type": "report", "le": "0.25"}
    assert registry.get_sample_value("jobqueue_attempt_duration_seconds_bucket", bucket) == 1


async def test_an_outcome_refused_for_a_lost_lease_is_not_counted(
    service: JobService, store: InMemoryJobStore
) -> None:
    await service.create(NewJob("email"))
    (job,) = await store.claim("w1", 1, utcnow() + LEASE)
    stolen = dataclasses.replace(job, lease_owner="w2")
    assert await service.record_outcome(stolen, Succeeded(duration_ms=1)) is None
    registry = service.metrics.registry
    assert sample(registry, "jobqueue_jobs_completed_total", type="email") is None
    assert sample(registry, "jobqueue_attempt_duration_seconds_count", type="email") is None


async def test_the_queue_state_counts_statuses_and_the_wait_of_the_oldest_due_job(
    service: JobService, store: InMemoryJobStore
) -> None:
    assert await service.queue_state() == QueueState(await service.stats(), 0.0)
    now = utcnow()
    waiting = make_job(created_at=now - timedelta(seconds=30), updated_at=now)
    due = make_job(created_at=now, next_run_at=now - timedelta(seconds=10))
    scheduled = make_job(created_at=now - timedelta(hours=1), next_run_at=now + LEASE)
    await store.insert([waiting, due, scheduled])
    state = await service.queue_state()
    assert state.counts["pending"] == 3
    assert 30 <= state.oldest_pending_age_s < 40


def test_the_collector_reports_every_status_and_the_oldest_wait() -> None:
    registry = CollectorRegistry()
    counts = {"pending": 4, "processing": 1, "completed": 0, "failed": 2, "cancelled": 0}
    registry.register(QueueStateCollector(QueueState(counts, 12.5)))
    for status, count in counts.items():
        assert sample(registry, "jobqueue_jobs", status=status) == count
    assert sample(registry, "jobqueue_oldest_pending_age_seconds") == 12.5


async def test_the_exposition_holds_this_processs_counts_and_the_queue_state(
    service: JobService, store: InMemoryJobStore
) -> None:
    await run_once(service, store, "email", outcome=Succeeded(duration_ms=1))
    text = exposition(service.metrics, await service.queue_state()).decode()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert {"jobqueue_jobs_completed", "jobqueue_jobs", "jobqueue_oldest_pending_age_seconds"} <= (
        set(families)
    )
    completed = families["jobqueue_jobs_completed"].samples[0]
    assert (completed.labels, completed.value) == ({"type": "email"}, 1)


def test_two_services_in_one_process_count_apart() -> None:
    first, second = JobMetrics(), JobMetrics()
    first.completed("email", None)
    assert sample(first.registry, "jobqueue_jobs_completed_total", type="email") == 1
    assert sample(second.registry, "jobqueue_jobs_completed_total", type="email") is None
