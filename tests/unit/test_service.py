"""The use cases over the in-memory store and a recording broker: no I/O."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from uuid import uuid4

import pytest

from jobqueue.domain.attempts import AttemptOutcome
from jobqueue.domain.changes import JobChanges, Sweep, UpdatePlan
from jobqueue.domain.errors import (
    InvalidTransitionError,
    JobNotFoundError,
    RetryNotAllowedError,
    UnknownJobTypeError,
)
from jobqueue.domain.jobs import Job, JobStatus, NewJob, utcnow
from jobqueue.domain.outcome import Failed, Succeeded
from jobqueue.domain.retry import RetryPolicy
from jobqueue.service import LEASE_EXPIRED, JobService
from jobqueue.store.memory import InMemoryJobStore
from tests.unit.doubles import RecordingBroker
from tests.unit.factories import make_job

LEASE = timedelta(seconds=30)
POLICY = RetryPolicy(max_attempts=3, backoff_ms=1000)


@pytest.fixture
def store() -> InMemoryJobStore:
    return InMemoryJobStore()


@pytest.fixture
def broker() -> RecordingBroker:
    return RecordingBroker()


@pytest.fixture
def service(store: InMemoryJobStore, broker: RecordingBroker) -> JobService:
    return JobService(store, broker, POLICY, known_types=["email", "report"])


async def running(
    service: JobService, store: InMemoryJobStore, max_attempts: int | None = None
) -> Job:
    """A job created and claimed by worker w1: processing its first attempt."""
    job, _created = await service.create(NewJob("email", max_attempts=max_attempts))
    (taken,) = await store.claim("w1", 1, utcnow() + LEASE)
    assert taken.id == job.id
    return taken


async def failed_job(service: JobService, store: InMemoryJobStore) -> Job:
    """A job that failed for good (permanent error on its first attempt)."""
    job = await running(service, store)
    failed = await service.record_outcome(job, Failed("no such mailbox", permanent=True))
    assert failed is not None
    return failed


# create


async def test_create_stores_a_pending_job_and_publishes_it(
    service: JobService, store: InMemoryJobStore, broker: RecordingBroker
) -> None:
    run_at = utcnow() + timedelta(minutes=1)
    new = NewJob("email", {"to": "a@b.c"}, run_at=run_at, priority=-1)
    job, created = await service.create(new)
    assert created
    assert (job.type, job.payload, job.status, job.attempts) == (
        "email",
        {"to": "a@b.c"},
        JobStatus.PENDING,
        0,
    )
    assert (job.next_run_at, job.priority, job.max_attempts) == (run_at, -1, POLICY.max_attempts)
    assert job.created_at == job.updated_at
    assert await store.get(job.id) == job
    assert broker.published == [[job.id]]


async def test_create_keeps_a_jobs_own_max_attempts(service: JobService) -> None:
    job, _created = await service.create(NewJob("email", max_attempts=9))
    assert job.max_attempts == 9


async def test_a_repeated_idempotency_key_returns_the_first_job(
    service: JobService, store: InMemoryJobStore, broker: RecordingBroker
) -> None:
    first, created = await service.create(NewJob("email", {"n": 1}, idempotency_key="k"))
    again, created_again = await service.create(NewJob("email", {"n": 2}, idempotency_key="k"))
    assert (created, created_again) == (True, False)
    assert again == first
    assert await store.count_by_status() == {JobStatus.PENDING: 1}
    assert broker.published == [[first.id]]


async def test_an_unknown_type_is_refused_before_anything_is_written(
    service: JobService, store: InMemoryJobStore, broker: RecordingBroker
) -> None:
    with pytest.raises(UnknownJobTypeError, match="Known types: email, report"):
        await service.create_many([NewJob("email"), NewJob("fax")])
    assert await store.count_by_status() == {}
    assert broker.published == []


async def test_any_type_is_accepted_without_known_types(
    store: InMemoryJobStore, broker: RecordingBroker
) -> None:
    service = JobService(store, broker, POLICY, known_types=None)
    job, created = await service.create(NewJob("fax"))
    assert created
    assert job.type == "fax"


async def test_a_batch_is_one_insert_and_one_publish_in_request_order(
    service: JobService, store: InMemoryJobStore, broker: RecordingBroker
) -> None:
    existing, _created = await service.create(NewJob("email", idempotency_key="seen"))
    broker.published.clear()
    requests = [
        NewJob("email", {"n": 0}),
        NewJob("report", {"n": 1}, idempotency_key="seen"),
        NewJob("report", {"n": 2}, idempotency_key="new"),
    ]
    results = await service.create_many(requests)
    assert [created for _job, created in results] == [True, False, True]
    jobs = [job for job, _created in results]
    assert jobs[1] == existing
    assert [jobs[0].payload, jobs[2].payload] == [{"n": 0}, {"n": 2}]
    assert broker.published == [[jobs[0].id, jobs[2].id]]
    assert await store.count_by_status() == {JobStatus.PENDING: 3}


async def test_a_batch_of_known_keys_publishes_nothing(
    service: JobService, broker: RecordingBroker
) -> None:
    first, _created = await service.create(NewJob("email", idempotency_key="k"))
    results = await service.create_many([NewJob("email", idempotency_key="k")])
    assert results == [(first, False)]
    assert len(broker.published) == 1


class InsertLoopError(Exception):
    """The service tried the same insert again and again."""


class CountingStore(InMemoryJobStore):
    """Stops a create that retries its insert without end (it would recurse until
    RecursionError, whose thousand-frame traceback takes seconds to report)."""

    def __init__(self) -> None:
        super().__init__()
        self.inserts = 0

    async def insert(self, jobs: Sequence[Job]) -> list[Job]:
        self.inserts += 1
        if self.inserts > 10:
            raise InsertLoopError(f"{self.inserts} inserts for one create")
        return await super().insert(jobs)


async def test_a_batch_repeating_a_new_key_creates_one_job(broker: RecordingBroker) -> None:
    store = CountingStore()
    service = JobService(store, broker, POLICY, known_types=None)
    results = await service.create_many(
        [NewJob("email", idempotency_key="twice"), NewJob("email", idempotency_key="twice")]
    )
    (first, created), (second, created_again) = results
    assert (created, created_again) == (True, False)
    assert first == second
    assert await store.count_by_status() == {JobStatus.PENDING: 1}


class RacingStore(InMemoryJobStore):
    """Another request inserts a job with the same key between look-up and insert."""

    def __init__(self) -> None:
        super().__init__()
        self.winner: Job | None = None

    async def find_by_idempotency_keys(self, keys: Collection[str]) -> list[Job]:
        if self.winner is None:
            now = utcnow()
            (key,) = keys
            self.winner = make_job(
                type="email", idempotency_key=key, created_at=now, updated_at=now
            )
            await self.insert([self.winner])
            return []
        return await super().find_by_idempotency_keys(keys)


async def test_a_key_taken_during_the_create_returns_the_winner(
    broker: RecordingBroker,
) -> None:
    store = RacingStore()
    service = JobService(store, broker, POLICY, known_types=None)
    job, created = await service.create(NewJob("email", idempotency_key="k"))
    assert not created
    assert job == store.winner
    assert await store.count_by_status() == {JobStatus.PENDING: 1}
    assert broker.published == []


async def test_a_failed_publish_keeps_the_job(
    service: JobService, store: InMemoryJobStore, broker: RecordingBroker
) -> None:
    broker.failing = True
    job, created = await service.create(NewJob("email"))
    assert created
    assert await store.get(job.id) == job


# reads


async def test_get_raises_for_a_missing_job(service: JobService) -> None:
    with pytest.raises(JobNotFoundError):
        await service.get(uuid4())


async def test_stats_names_every_status(service: JobService) -> None:
    await service.create(NewJob("email"))
    assert await service.stats() == {
        "pending": 1,
        "processing": 0,
        "completed": 0,
        "failed": 0,
        "cancelled": 0,
        "waiting": 0,
    }


# retry, cancel, update, delete


async def test_retry_sends_a_failed_job_back_and_publishes_it(
    service: JobService, store: InMemoryJobStore, broker: RecordingBroker
) -> None:
    failed = await failed_job(service, store)
    broker.published.clear()
    retried = await service.retry(failed.id)
    assert (retried.status, retried.attempts, retried.next_run_at) == (JobStatus.PENDING, 0, None)
    assert broker.published == [[failed.id]]
    assert broker.withdrawn == []


async def test_retry_refuses_a_job_that_has_not_failed(
    service: JobService, store: InMemoryJobStore, broker: RecordingBroker
) -> None:
    job, _created = await service.create(NewJob("email"))
    with pytest.raises(RetryNotAllowedError, match="current status: pending"):
        await service.retry(job.id)
    assert broker.published == [[job.id]]
    stored = await store.get(job.id)
    assert stored == job


async def failed_jobs(service: JobService, store: InMemoryJobStore, count: int) -> list[Job]:
    return [await failed_job(service, store) for _ in range(count)]


async def test_retry_failed_sends_every_failed_job_back_in_batches(
    service: JobService, store: InMemoryJobStore, broker: RecordingBroker
) -> None:
    failed = sorted(await failed_jobs(service, store, 5), key=lambda j: (j.created_at, j.id))
    pending, _created = await service.create(NewJob("email"))
    broker.published.clear()
    assert await service.retry_failed(batch=2) == 5
    assert broker.published == [[job.id for job in failed[n : n + 2]] for n in (0, 2, 4)]
    for job in failed:
        stored = await store.get(job.id)
        assert stored is not None
        assert (stored.status, stored.attempts, stored.next_run_at) == (JobStatus.PENDING, 0, None)
    assert await store.get(pending.id) == pending
    assert await service.retry_failed() == 0  # nothing failed any more: nothing published
    assert len(broker.published) == 3


async def test_retry_failed_of_a_type_leaves_the_others(
    service: JobService, store: InMemoryJobStore, broker: RecordingBroker
) -> None:
    (email,) = await failed_jobs(service, store, 1)
    report, _created = await service.create(NewJob("report"))
    (taken,) = await store.claim("w1", 1, utcnow() + LEASE)
    await service.record_outcome(taken, Failed("no data", permanent=True))
    broker.published.clear()
    assert await service.retry_failed("report") == 1
    assert broker.published == [[report.id]]
    stored = await store.get(email.id)
    assert stored is not None
    assert stored.status is JobStatus.FAILED


class FailingAgainStore(InMemoryJobStore):
    """Every job a sweep retries fails again at once, before the next batch is taken."""

    async def apply_sweep(self, plan: UpdatePlan, sweep: Sweep) -> list[Job]:
        changed = await super().apply_sweep(plan, sweep)
        for job in changed:
            back = dataclasses.replace(
                plan, expected_status=plan.status, status=plan.expected_status
            )
            await self.apply(job.id, back)
        return changed


async def test_retry_failed_retries_each_job_once_even_if_it_fails_again_meanwhile(
    broker: RecordingBroker,
) -> None:
    store = FailingAgainStore()
    service = JobService(store, broker, POLICY, known_types=["email"])
    failed = sorted(await failed_jobs(service, store, 3), key=lambda j: (j.created_at, j.id))
    broker.published.clear()
    assert await service.retry_failed(batch=1) == 3
    assert broker.published == [[job.id] for job in failed]


async def test_cancel_withdraws_a_pending_job(service: JobService, broker: RecordingBroker) -> None:
    job, _created = await service.create(NewJob("email"))
    cancelled = await service.cancel(job.id)
    assert cancelled.status is JobStatus.CANCELLED
    assert broker.withdrawn == [job.id]
    assert broker.published == [[job.id]]  # the create's publish only


async def test_a_running_job_cancelled_keeps_its_lease_until_its_worker_ends_it(
    service: JobService, store: InMemoryJobStore, broker: RecordingBroker
) -> None:
    job = await running(service, store)
    cancelled = await service.cancel(job.id)
    assert (cancelled.status, cancelled.lease_owner) == (JobStatus.CANCELLED, "w1")
    assert broker.withdrawn == []  # its worker holds the trigger
    assert await service.cancelled_among([job.id]) == {job.id}
    assert await store.renew("w1", [job.id], utcnow() + LEASE) == {job.id}  # still held

    ended = await service.record_outcome(job, Succeeded())  # however the handler ended
    assert ended is not None
    assert (ended.status, ended.lease_owner) == (JobStatus.CANCELLED, None)
    [attempt] = await service.attempts(job.id)
    assert attempt.outcome is AttemptOutcome.CANCELLED
    with pytest.raises(InvalidTransitionError):
        await service.cancel(job.id)  # a finished job cannot be cancelled


async def test_a_patch_to_pending_reschedules_and_publishes(
    service: JobService, store: InMemoryJobStore, broker: RecordingBroker
) -> None:
    failed = await failed_job(service, store)
    broker.published.clear()
    later = utcnow() + timedelta(hours=1)
    changes = JobChanges(
        status=JobStatus.PENDING, attempts=1, next_run_at=later, next_run_at_given=True
    )
    updated = await service.update(failed.id, changes)
    assert (updated.status, updated.attempts, updated.next_run_at) == (
        JobStatus.PENDING,
        1,
        later,
    )
    assert broker.published == [[failed.id]]


async def test_a_patch_to_cancelled_withdraws(service: JobService, broker: RecordingBroker) -> None:
    job, _created = await service.create(NewJob("email"))
    updated = await service.update(job.id, JobChanges(status=JobStatus.CANCELLED))
    assert updated.status is JobStatus.CANCELLED
    assert broker.withdrawn == [job.id]


async def test_a_patch_the_queue_does_not_see_touches_nothing_but_the_row(
    service: JobService, store: InMemoryJobStore, broker: RecordingBroker
) -> None:
    failed = await failed_job(service, store)
    broker.published.clear()
    updated = await service.update(failed.id, JobChanges(attempts=2))
    assert (updated.status, updated.attempts) == (JobStatus.FAILED, 2)
    assert (broker.published, broker.withdrawn) == ([], [])


async def test_a_patch_of_a_running_job_is_refused(
    service: JobService, store: InMemoryJobStore
) -> None:
    job = await running(service, store)
    with pytest.raises(InvalidTransitionError, match="processing job cannot be changed"):
        await service.update(job.id, JobChanges(attempts=0))


async def test_a_change_of_a_missing_job_is_not_found(service: JobService) -> None:
    for change in (
        service.retry(uuid4()),
        service.cancel(uuid4()),
        service.update(uuid4(), JobChanges(attempts=0)),
        service.delete(uuid4()),
    ):
        with pytest.raises(JobNotFoundError):
            await change


async def test_delete_removes_the_row_and_withdraws_it(
    service: JobService, store: InMemoryJobStore, broker: RecordingBroker
) -> None:
    job, _created = await service.create(NewJob("email"))
    await service.delete(job.id)
    assert await store.get(job.id) is None
    assert broker.withdrawn == [job.id]


# outcomes


async def test_success_completes_the_job(service: JobService, store: InMemoryJobStore) -> None:
    job = await running(service, store)
    done = await service.record_outcome(job, Succeeded({"sent": True}))
    assert done is not None
    assert (done.status, done.attempts, done.lease_owner) == (JobStatus.COMPLETED, 1, None)
    assert await store.get(job.id) == done


async def test_a_failure_with_attempts_left_retries_after_the_backoff(
    service: JobService, store: InMemoryJobStore, broker: RecordingBroker
) -> None:
    job = await running(service, store)
    broker.published.clear()
    before = utcnow()
    retried = await service.record_outcome(job, Failed("smtp timeout"))
    after = utcnow()
    assert retried is not None
    assert (retried.status, retried.attempts, retried.last_error) == (
        JobStatus.PENDING,
        1,
        "smtp timeout",
    )
    assert_between(
        retried.next_run_at, before + POLICY.delay_after(1), after + POLICY.delay_after(1)
    )
    assert broker.published == []  # the queue runs it at next_run_at
    assert await store.claim("w1", 1, utcnow() + LEASE) == []  # not due yet


async def test_the_backoff_doubles_with_each_attempt(
    service: JobService, store: InMemoryJobStore
) -> None:
    job = await running(service, store)
    assert await service.record_outcome(job, Failed("once")) is not None
    later = utcnow() + timedelta(hours=1)
    second = await store.start(job.id, "w1", utcnow() + LEASE, later)  # attempt 2 delivered
    assert second is not None
    before = utcnow()
    retried = await service.record_outcome(second, Failed("again"))
    after = utcnow()
    assert retried is not None
    assert_between(retried.next_run_at, before + timedelta(seconds=2), after + timedelta(seconds=2))


async def test_the_last_attempt_fails_for_good_with_a_dead_letter(
    service: JobService, store: InMemoryJobStore, broker: RecordingBroker
) -> None:
    job = await running(service, store, max_attempts=1)
    failed = await service.record_outcome(job, Failed("smtp timeout"))
    assert failed is not None
    assert failed.status is JobStatus.FAILED
    reason = "attempts exhausted (1/1): smtp timeout"
    assert failed.last_error == reason
    (entry,) = await store.dead_letters(10, 0)
    assert (entry.job_id, entry.reason, entry.attempts) == (job.id, reason, 1)
    assert broker.dead_letters == [entry]


async def test_a_dead_letter_the_queue_did_not_take_is_written_later(
    service: JobService, store: InMemoryJobStore, broker: RecordingBroker
) -> None:
    job = await running(service, store, max_attempts=1)
    broker.failing = True  # the queue's DLQ (Redis) is down
    await service.record_outcome(job, Failed("smtp timeout"))
    (entry,) = await store.dead_letters(10, 0)
    assert await store.queue_pending_dead_letters(10) == [entry]
    assert await service.queue_dead_letters(10) == 0  # still down: kept for later

    broker.failing = False
    assert await service.queue_dead_letters(10) == 1
    assert broker.dead_letters == [entry]
    assert await store.queue_pending_dead_letters(10) == []
    assert await service.queue_dead_letters(10) == 0


async def test_a_dead_letter_the_queue_took_is_not_pending(
    service: JobService, store: InMemoryJobStore, broker: RecordingBroker
) -> None:
    job = await running(service, store, max_attempts=1)
    await service.record_outcome(job, Failed("smtp timeout"))
    assert len(broker.dead_letters) == 1
    assert await store.queue_pending_dead_letters(10) == []


async def test_a_permanent_failure_gives_up_at_once(
    service: JobService, store: InMemoryJobStore, broker: RecordingBroker
) -> None:
    job = await running(service, store)
    failed = await service.record_outcome(job, Failed("no such mailbox", permanent=True))
    assert failed is not None
    assert (failed.status, failed.attempts, failed.last_error) == (
        JobStatus.FAILED,
        1,
        "no such mailbox",
    )
    assert [entry.reason for entry in broker.dead_letters] == ["no such mailbox"]
    assert await service.dead_letters(10, 0) == broker.dead_letters


@pytest.mark.parametrize(
    "outcome", [Succeeded(), Failed("boom"), Failed("boom", permanent=True)], ids=repr
)
async def test_an_outcome_after_the_lease_was_lost_is_dropped(
    service: JobService,
    store: InMemoryJobStore,
    broker: RecordingBroker,
    outcome: Succeeded | Failed,
) -> None:
    job = await running(service, store)
    assert await store.release(job) is not None  # its lease ran out; another worker took it
    assert await store.claim("w2", 1, utcnow() + LEASE)
    assert await service.record_outcome(job, outcome) is None
    stored = await store.get(job.id)
    assert stored is not None
    assert (stored.status, stored.lease_owner) == (JobStatus.PROCESSING, "w2")
    assert broker.dead_letters == []


async def test_an_outcome_of_a_deleted_job_is_dropped(
    service: JobService, store: InMemoryJobStore
) -> None:
    job = await running(service, store)
    await service.delete(job.id)
    assert await service.record_outcome(job, Succeeded()) is None


async def test_a_lost_attempt_counts_as_a_failure(
    service: JobService, store: InMemoryJobStore
) -> None:
    job = await running(service, store)
    retried = await service.record_lost_attempt(job)
    assert retried is not None
    assert (retried.status, retried.last_error) == (JobStatus.PENDING, LEASE_EXPIRED)
    [lost] = await service.attempts(job.id)
    assert (lost.number, lost.worker, lost.outcome) == (1, job.lease_owner, AttemptOutcome.LOST)
    assert (lost.error, lost.duration_ms, lost.started_at) == (LEASE_EXPIRED, None, job.updated_at)


async def test_the_history_of_an_unknown_job_is_not_found(service: JobService) -> None:
    with pytest.raises(JobNotFoundError):
        await service.attempts(uuid4())


async def test_recover_expired_retries_or_fails_each_expired_job(
    service: JobService, store: InMemoryJobStore, broker: RecordingBroker
) -> None:
    await service.create(NewJob("email"))
    await service.create(NewJob("email", max_attempts=1))
    await service.create(NewJob("email"))
    gone = utcnow() - timedelta(seconds=1)
    first, last = await store.claim("dead", 2, gone)
    (alive,) = await store.claim("w1", 1, utcnow() + LEASE)
    assert await service.recover_expired() == 2
    retried, failed, untouched = [await service.get(job.id) for job in (first, last, alive)]
    assert (retried.status, retried.attempts) == (JobStatus.PENDING, 1)
    assert retried.next_run_at is not None
    assert (failed.status, failed.last_error) == (
        JobStatus.FAILED,
        f"attempts exhausted (1/1): {LEASE_EXPIRED}",
    )
    assert [entry.job_id for entry in broker.dead_letters] == [last.id]
    assert untouched == alive
    assert await service.recover_expired() == 0


async def test_recover_expired_respects_the_limit(
    service: JobService, store: InMemoryJobStore
) -> None:
    await service.create_many([NewJob("email") for _ in range(3)])
    await store.claim("dead", 3, utcnow() - timedelta(seconds=1))
    assert await service.recover_expired(limit=2) == 2
    assert await service.recover_expired(limit=2) == 1


def assert_between(moment: datetime | None, low: datetime, high: datetime) -> None:
    assert moment is not None
    assert low <= moment <= high
