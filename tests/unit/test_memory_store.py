"""The in-memory store keeps the SQL stores' contract.

Every test of ``tests/integration/test_store.py`` (run there on SQLite and PostgreSQL) runs
here unchanged on ``InMemoryJobStore``; the tests below it pin the rest of the contract,
statement by statement of ``store/sqlite_sql.py``.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, cast
from uuid import UUID, uuid4

import pytest

from jobqueue.domain.changes import QueueAction, UpdatePlan
from jobqueue.domain.jobs import Job, JobFilter, JobStatus, utcnow
from jobqueue.store.base import DuplicateIdempotencyKeyError, JobStore
from jobqueue.store.memory import InMemoryJobStore
from tests.integration import test_store as sql_store_tests
from tests.unit.factories import ended, make_job

LEASE = timedelta(seconds=30)

StoreTest = Callable[[JobStore], Awaitable[None]]

SQL_STORE_TESTS: list[StoreTest] = [
    cast(StoreTest, test)
    for name, test in inspect.getmembers(sql_store_tests, inspect.iscoroutinefunction)
    if name.startswith("test_")
]


@pytest.fixture
def store() -> JobStore:
    """A fresh in-memory store, seen through the protocol the service uses."""
    return InMemoryJobStore()


def new_job(**fields: Any) -> Job:
    """A fresh job created now, unless ``fields`` say otherwise."""
    now = utcnow()
    return make_job(**{"id": uuid4(), "created_at": now, "updated_at": now, **fields})


def test_every_sql_store_test_is_taken() -> None:
    assert len(SQL_STORE_TESTS) >= 11
    for test in SQL_STORE_TESTS:
        assert list(inspect.signature(test).parameters) == ["store"], test.__name__


@pytest.mark.parametrize("sql_store_test", SQL_STORE_TESTS, ids=lambda test: test.__name__)
async def test_the_sql_store_suite_passes(sql_store_test: StoreTest, store: JobStore) -> None:
    await sql_store_test(store)


async def claimed(store: JobStore, job: Job, owner: str = "w1") -> Job:
    """Insert ``job`` alone and claim it."""
    await store.insert([job])
    (taken,) = await store.claim(owner, 1, utcnow() + LEASE)
    return taken


async def test_claim_respects_the_limit_and_clears_the_run_time(store: JobStore) -> None:
    due = new_job(next_run_at=utcnow() - timedelta(seconds=1))
    await store.insert([due, new_job(), new_job()])
    before = utcnow()
    claimed_jobs = await store.claim("w1", 2, before + LEASE)
    assert len(claimed_jobs) == 2
    first = claimed_jobs[0]
    assert first.id == due.id
    assert (first.next_run_at, first.lease_expires_at) == (None, before + LEASE)
    assert first.updated_at >= before
    assert await store.claim("w1", 0, utcnow() + LEASE) == []
    assert len(await store.claim("w1", 5, utcnow() + LEASE)) == 1


async def test_claim_with_no_types_takes_nothing(store: JobStore) -> None:
    await store.insert([new_job()])
    assert await store.claim("w1", 5, utcnow() + LEASE, types=[]) == []


async def test_only_pending_jobs_are_claimed(store: JobStore) -> None:
    await store.insert([new_job(status=status) for status in JobStatus if status != "pending"])
    assert await store.claim("w1", 10, utcnow() + LEASE) == []


async def test_a_batch_repeating_a_key_inserts_nothing(store: JobStore) -> None:
    with pytest.raises(DuplicateIdempotencyKeyError):
        await store.insert([new_job(idempotency_key="k"), new_job(idempotency_key="k")])
    assert await store.list_jobs(JobFilter()) == []


async def test_a_batch_meeting_a_taken_key_inserts_nothing(store: JobStore) -> None:
    await store.insert([new_job(idempotency_key="k")])
    with pytest.raises(DuplicateIdempotencyKeyError):
        await store.insert([new_job(idempotency_key="other"), new_job(idempotency_key="k")])
    assert await store.find_by_idempotency_keys(["other"]) == []


async def test_jobs_without_keys_never_conflict(store: JobStore) -> None:
    await store.insert([new_job(), new_job()])
    await store.insert([new_job()])
    assert len(await store.list_jobs(JobFilter())) == 3


async def test_find_by_idempotency_keys(store: JobStore) -> None:
    a, b = new_job(idempotency_key="a"), new_job(idempotency_key="b")
    await store.insert([a, b, new_job()])
    found = await store.find_by_idempotency_keys({"a", "missing"})
    assert found == [a]
    assert await store.find_by_idempotency_keys([]) == []


async def test_get_gives_back_what_was_inserted(store: JobStore) -> None:
    job = new_job(payload={"nested": {"list": [1, "two", None]}}, priority=3, max_attempts=2)
    await store.insert([job])
    assert await store.get(job.id) == job
    assert await store.get(uuid4()) is None


async def test_a_returned_payload_is_the_callers_own(store: JobStore) -> None:
    job = new_job(payload={"n": 1})
    await store.insert([job])
    job.payload["n"] = 2
    loaded = await store.get(job.id)
    assert loaded is not None
    loaded.payload["n"] = 3
    again = await store.get(job.id)
    assert again is not None
    assert again.payload == {"n": 1}


async def test_list_is_newest_first_then_by_id(store: JobStore) -> None:
    now = utcnow()
    same_time = [new_job(created_at=now) for _ in range(3)]
    older = new_job(created_at=now - timedelta(seconds=1))
    newer = new_job(created_at=now + timedelta(seconds=1))
    await store.insert([*same_time, older, newer])
    listed = [job.id for job in await store.list_jobs(JobFilter())]
    tied = sorted((job.id for job in same_time), reverse=True)
    assert listed == [newer.id, *tied, older.id]


async def test_list_filters_and_pages(store: JobStore) -> None:
    now = utcnow()
    jobs = [
        new_job(type=kind, status=status, created_at=now + timedelta(seconds=n))
        for n, (kind, status) in enumerate(
            [("a", JobStatus.PENDING), ("b", JobStatus.PENDING), ("a", JobStatus.FAILED)] * 3
        )
    ]
    await store.insert(jobs)
    pending_a = [job.id for job in reversed(jobs) if job.type == "a" and job.status == "pending"]
    query = JobFilter(status=JobStatus.PENDING, type="a")
    assert [job.id for job in await store.list_jobs(query)] == pending_a
    paged = JobFilter(status=JobStatus.PENDING, type="a", limit=1, offset=1)
    assert [job.id for job in await store.list_jobs(paged)] == pending_a[1:2]
    assert len(await store.list_jobs(JobFilter(type="b", limit=2))) == 2
    assert await store.list_jobs(JobFilter(offset=9)) == []


async def test_count_by_status_counts_each_present_status(store: JobStore) -> None:
    assert await store.count_by_status() == {}
    await store.insert([new_job(), new_job(), new_job(status=JobStatus.FAILED)])
    assert await store.count_by_status() == {JobStatus.PENDING: 2, JobStatus.FAILED: 1}


async def test_apply_only_from_the_expected_status(store: JobStore) -> None:
    job = new_job(status=JobStatus.FAILED, attempts=5, last_error="boom")
    await store.insert([job])
    run_at = utcnow() + LEASE
    plan = UpdatePlan(JobStatus.PENDING, JobStatus.CANCELLED, 0, None, QueueAction.WITHDRAW)
    assert await store.apply(job.id, plan) is None
    revive = UpdatePlan(JobStatus.FAILED, JobStatus.PENDING, 1, run_at, QueueAction.ENQUEUE)
    changed = await store.apply(job.id, revive)
    assert changed is not None
    assert (changed.status, changed.attempts, changed.next_run_at) == (
        JobStatus.PENDING,
        1,
        run_at,
    )
    assert changed.last_error == "boom"
    assert changed.updated_at > job.updated_at
    assert await store.get(job.id) == changed
    assert await store.apply(uuid4(), revive) is None


async def test_delete_returns_the_row_and_keeps_its_dead_letter(store: JobStore) -> None:
    job = await claimed(store, new_job())
    assert await store.fail(job, "boom", ended(job, "boom")) is not None
    deleted = await store.delete(job.id)
    assert deleted is not None
    assert (deleted.id, deleted.status) == (job.id, JobStatus.FAILED)
    assert await store.get(job.id) is None
    assert await store.delete(job.id) is None
    assert [entry.job_id for entry in await store.dead_letters(10, 0)] == [job.id]


async def test_start_runs_the_next_attempt_of_a_due_job(store: JobStore) -> None:
    job = new_job(attempts=2, next_run_at=utcnow() - LEASE)
    await store.insert([job])
    until = utcnow() + LEASE
    started = await store.start(job.id, "w1", until, utcnow())
    assert started is not None
    assert (started.status, started.attempts, started.lease_owner) == (
        JobStatus.PROCESSING,
        3,
        "w1",
    )
    assert (started.lease_expires_at, started.next_run_at) == (until, None)
    # Delivered again while it runs: nothing to start (the queue decides what that means).
    assert await store.start(job.id, "w2", until, utcnow()) is None


async def test_start_waits_for_the_due_time(store: JobStore) -> None:
    job = new_job(next_run_at=utcnow() + LEASE)
    await store.insert([job])
    assert await store.start(job.id, "w1", utcnow() + LEASE, utcnow()) is None
    started = await store.start(job.id, "w1", utcnow() + LEASE, utcnow() + 2 * LEASE)
    assert started is not None
    assert started.attempts == 1


async def test_start_refuses_finished_and_missing_jobs(store: JobStore) -> None:
    done = new_job(status=JobStatus.COMPLETED)
    await store.insert([done])
    assert await store.start(done.id, "w1", utcnow() + LEASE, utcnow()) is None
    assert await store.start(uuid4(), "w1", utcnow() + LEASE, utcnow()) is None


async def test_renew_returns_only_the_leases_still_held(store: JobStore) -> None:
    await store.insert([new_job() for _ in range(3)])
    mine = await store.claim("w1", 2, utcnow() + LEASE)
    (theirs,) = await store.claim("w2", 1, utcnow() + LEASE)
    finished = await store.complete(mine[1], ended(mine[1]))
    assert finished is not None
    until = utcnow() + 2 * LEASE
    ids = [job.id for job in [*mine, theirs]] + [uuid4()]
    assert await store.renew("w1", ids, until) == {mine[0].id}
    renewed = await store.get(mine[0].id)
    assert renewed is not None
    assert (renewed.lease_expires_at, renewed.updated_at) == (until, mine[0].updated_at)
    assert await store.renew("w1", [], until) == set()


async def test_outcomes_need_the_lease_and_a_processing_job(store: JobStore) -> None:
    job = await claimed(store, new_job())
    stolen = dataclasses.replace(job, lease_owner="w2")
    unleased = dataclasses.replace(job, lease_owner=None)
    for attempt in (stolen, unleased):
        assert await store.schedule_retry(attempt, utcnow(), "x", ended(attempt, "x")) is None
        assert await store.fail(attempt, "x", ended(attempt, "x")) is None
        assert await store.release(attempt) is None
    released = await store.release(job)
    assert released is not None
    assert await store.release(job) is None  # pending now: nothing is held
    assert await store.complete(job, ended(job)) is None
    assert await store.dead_letters(10, 0) == []


async def test_outcomes_give_up_the_lease(store: JobStore) -> None:
    for outcome in ("complete", "retry", "fail", "release"):
        job = await claimed(store, new_job(), owner=outcome)
        if outcome == "complete":
            result = await store.complete(job, ended(job))
        elif outcome == "retry":
            result = await store.schedule_retry(job, utcnow() + LEASE, "later", ended(job, "later"))
        elif outcome == "fail":
            failed = await store.fail(job, "boom", ended(job, "boom"))
            result = None if failed is None else failed[0]
        else:
            result = await store.release(job)
        assert result is not None
        assert (result.lease_owner, result.lease_expires_at) == (None, None)
        assert result.updated_at >= job.updated_at
        assert await store.get(job.id) == result


async def test_a_failed_job_keeps_its_reason_and_its_entry_its_time(store: JobStore) -> None:
    job = await claimed(store, new_job(payload={"k": [1]}))
    result = await store.fail(job, "gave up", ended(job, "gave up"))
    assert result is not None
    failed, entry = result
    assert (failed.last_error, failed.attempts) == ("gave up", 1)
    assert entry.failed_at == failed.updated_at
    entry.payload["k"].append(2)
    assert (await store.dead_letters(1, 0))[0].payload == {"k": [1]}


async def test_dead_letters_newest_first_and_paged(store: JobStore) -> None:
    entries = []
    for _ in range(3):
        job = await claimed(store, new_job())
        result = await store.fail(job, "boom", ended(job, "boom"))
        assert result is not None
        entries.append(result[1])
    newest_first = list(reversed(entries))
    assert await store.dead_letters(10, 0) == newest_first
    assert await store.dead_letters(1, 1) == newest_first[1:2]
    assert await store.dead_letters(10, 3) == []


async def test_expired_oldest_lease_first_within_the_limit(store: JobStore) -> None:
    now = utcnow()
    await store.insert([new_job() for _ in range(3)])
    (late,) = await store.claim("w1", 1, now - timedelta(seconds=1))
    (early,) = await store.claim("w2", 1, now - timedelta(seconds=2))
    (alive,) = await store.claim("w3", 1, now + LEASE)
    assert [job.id for job in await store.expired(utcnow(), 10)] == [early.id, late.id]
    assert [job.id for job in await store.expired(utcnow(), 1)] == [early.id]
    assert alive.id not in {job.id for job in await store.expired(now, 10)}


async def test_next_run_at_is_the_earliest_pending_time(store: JobStore) -> None:
    assert await store.next_run_at() is None
    now = utcnow()
    soon, later = now + timedelta(seconds=1), now + timedelta(seconds=2)
    past = now - timedelta(seconds=1)
    await store.insert([new_job(next_run_at=later), new_job(next_run_at=soon), new_job()])
    await store.insert([new_job(status=JobStatus.CANCELLED, next_run_at=past)])
    assert await store.next_run_at() == soon


async def test_listen_opens_and_closes(store: JobStore) -> None:
    async with store.listen(lambda: None):
        await store.ping()
    await store.close()


def test_ids_of_equal_jobs_sort_as_the_databases_sort_them() -> None:
    # SQLite orders ids as hex text, PostgreSQL as uuid bytes: both are UUID order.
    ids = [uuid4() for _ in range(20)]
    assert sorted(ids) == sorted(ids, key=lambda job_id: job_id.hex)
    assert sorted(ids) == sorted(ids, key=lambda job_id: UUID(int=job_id.int).bytes)
