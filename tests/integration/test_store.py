"""The SQL store on real SQLite and PostgreSQL: claims, leases, outcomes."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from jobqueue.domain.changes import RETRY, QueueAction, Sweep, UpdatePlan
from jobqueue.domain.jobs import (
    Job,
    JobFilter,
    JobStatus,
    OnParentFailure,
    ProgressReport,
    utcnow,
)
from jobqueue.domain.limits import TypeLimit
from jobqueue.store.base import DuplicateIdempotencyKeyError, JobStore, TypeLimitReachedError
from jobqueue.store.factory import open_store
from tests.unit.factories import ended, make_job

LEASE = timedelta(seconds=30)


@pytest.fixture(params=["sqlite", "postgres"])
def mode(request: pytest.FixtureRequest) -> str:
    """The store is the same with or without Redis: run it once per database."""
    return str(request.param)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[JobStore]:
    """A store on the mode's fresh database."""
    sql_store = open_store(database_url)
    yield sql_store
    await sql_store.close()


def new_job(**fields: Any) -> Job:
    now = utcnow()
    return make_job(**{"id": uuid4(), "created_at": now, "updated_at": now, **fields})


async def test_claim_takes_due_jobs_by_priority_then_age(store: JobStore) -> None:
    old, urgent, later = new_job(), new_job(priority=-1), new_job(next_run_at=utcnow() + LEASE)
    await store.insert([old, urgent, later])
    claimed = await store.claim("w1", 10, utcnow() + LEASE)
    assert [job.id for job in claimed] == [urgent.id, old.id]
    assert all(job.status is JobStatus.PROCESSING and job.attempts == 1 for job in claimed)
    assert all(job.lease_owner == "w1" for job in claimed)


async def test_claim_only_takes_the_types_asked_for(store: JobStore) -> None:
    await store.insert([new_job(type="a"), new_job(type="b")])
    claimed = await store.claim("w1", 10, utcnow() + LEASE, types=["b"])
    assert [job.type for job in claimed] == ["b"]


async def test_concurrent_claims_never_share_a_job(store: JobStore) -> None:
    await store.insert([new_job() for _ in range(60)])
    batches = await asyncio.gather(*(store.claim(f"w{n}", 7, utcnow() + LEASE) for n in range(12)))
    ids = [job.id for batch in batches for job in batch]
    assert len(ids) == len(set(ids)) == 60


async def test_an_outcome_needs_the_lease(store: JobStore) -> None:
    await store.insert([new_job()])
    (job,) = await store.claim("w1", 1, utcnow() + LEASE)
    stolen = dataclasses.replace(job, lease_owner="w2")
    assert await store.complete(stolen, ended(stolen)) is None
    done = await store.complete(job, ended(job))
    assert done is not None
    assert (done.status, done.lease_owner) == (JobStatus.COMPLETED, None)
    assert await store.complete(job, ended(job)) is None  # an outcome is recorded once


async def test_concurrent_completions_share_transactions_but_keep_lease_checks(
    store: JobStore,
) -> None:
    await store.insert([new_job() for _ in range(30)])
    claimed = await store.claim("w1", 30, utcnow() + LEASE)
    stolen = [dataclasses.replace(job, lease_owner="w2") for job in claimed[:5]]
    results = await asyncio.gather(
        *(store.complete(job, ended(job)) for job in [*stolen, *claimed[5:]])
    )
    assert results[:5] == [None] * 5
    done = results[5:]
    assert [job.id for job in done if job] == [job.id for job in claimed[5:]]
    assert all(job is not None and job.status is JobStatus.COMPLETED for job in done)
    counts = await store.count_by_status()
    assert (counts[JobStatus.COMPLETED], counts[JobStatus.PROCESSING]) == (25, 5)


async def test_expired_leases_are_found_and_renewal_keeps_them(store: JobStore) -> None:
    await store.insert([new_job(), new_job()])
    a, b = await store.claim("w1", 2, utcnow() - timedelta(seconds=1))
    assert await store.renew("w1", [a.id], utcnow() + LEASE) == {a.id}
    expired = await store.expired(utcnow(), 10)
    assert [job.id for job in expired] == [b.id]


async def test_release_gives_the_attempt_back(store: JobStore) -> None:
    await store.insert([new_job()])
    (job,) = await store.claim("w1", 1, utcnow() + LEASE)
    released = await store.release(job)
    assert released is not None
    assert (released.status, released.attempts) == (JobStatus.PENDING, 0)


async def test_fail_writes_the_dead_letter_in_the_same_transaction(store: JobStore) -> None:
    await store.insert([new_job(payload={"k": "v"})])
    (job,) = await store.claim("w1", 1, utcnow() + LEASE)
    result = await store.fail(job, "boom", ended(job, "boom"))
    assert result is not None
    failed, entry = result
    assert failed.status is JobStatus.FAILED
    assert (entry.job_id, entry.payload, entry.reason, entry.attempts) == (
        job.id,
        {"k": "v"},
        "boom",
        1,
    )
    assert await store.dead_letters(10, 0) == [entry]


async def test_schedule_retry_sets_the_next_run(store: JobStore) -> None:
    await store.insert([new_job()])
    (job,) = await store.claim("w1", 1, utcnow() + LEASE)
    run_at = utcnow() + timedelta(seconds=4)
    retried = await store.schedule_retry(job, run_at, "oops", ended(job, "oops"))
    assert retried is not None
    assert (retried.status, retried.next_run_at, retried.last_error) == (
        JobStatus.PENDING,
        run_at.replace(microsecond=run_at.microsecond),
        "oops",
    )
    assert await store.claim("w1", 1, utcnow() + LEASE) == []
    assert await store.next_run_at() == run_at


async def test_a_repeated_idempotency_key_is_refused(store: JobStore) -> None:
    await store.insert([new_job(idempotency_key="k")])
    with pytest.raises(DuplicateIdempotencyKeyError):
        await store.insert([new_job(idempotency_key="k")])
    assert len(await store.list_jobs(JobFilter())) == 1


async def test_timestamps_come_back_in_utc(store: JobStore) -> None:
    job = new_job()
    await store.insert([job])
    loaded = await store.get(job.id)
    assert loaded is not None
    assert loaded.created_at == job.created_at
    assert loaded.created_at.utcoffset() == timedelta(0)


async def test_a_result_and_each_attempt_are_kept_and_go_with_the_job(store: JobStore) -> None:
    await store.insert([new_job(max_attempts=3)])
    (first,) = await store.claim("w1", 1, utcnow())  # a lease already run out: due again
    await store.schedule_retry(first, utcnow(), "Boom: first", ended(first, "Boom: first"))
    (second,) = await store.claim("w2", 1, utcnow() + LEASE)
    result = {"sent": 3, "ids": ["a", "b"], "big": 2**63 - 1, "text": "é€𝄞"}
    done = await store.complete(second, ended(second), result)
    assert done is not None
    assert done.result == result
    assert (await store.get(done.id)).result == result  # type: ignore[union-attr]

    history = await store.attempts(done.id) or []
    assert [(a.number, a.worker, a.outcome.value, a.error) for a in history] == [
        (1, "w1", "failed", "Boom: first"),
        (2, "w2", "succeeded", None),
    ]
    assert all(a.started_at <= a.finished_at for a in history)
    await store.delete(done.id)
    assert await store.attempts(done.id) is None  # no such job any more


async def test_a_job_failed_for_good_keeps_its_last_attempt(store: JobStore) -> None:
    await store.insert([new_job(max_attempts=1)])
    (job,) = await store.claim("w1", 1, utcnow() + LEASE)
    attempt = ended(job, "ValueError: no")
    failed = await store.fail(job, "attempts exhausted (1/1): ValueError: no", attempt)
    assert failed is not None
    assert await store.attempts(job.id) == [attempt]
    assert failed[0].result is None


async def test_prune_deletes_only_finished_jobs_older_than_the_cutoff(store: JobStore) -> None:
    await store.insert([new_job() for _ in range(5)])
    claimed = await store.claim("w1", 4, utcnow() + LEASE)
    for job in claimed[:3]:
        await store.complete(job, ended(job))
    await store.fail(claimed[3], "boom", ended(claimed[3], "boom"))
    cutoff = utcnow() + timedelta(seconds=1)
    assert await store.prune(utcnow() - timedelta(hours=1), 10) == 0  # none that old
    assert await store.prune(cutoff, 2) == 2  # one batch at most
    assert await store.prune(cutoff, 2) == 1
    left = {job.status for job in await store.list_jobs(JobFilter())}
    assert left == {JobStatus.FAILED, JobStatus.PENDING}
    assert [await store.attempts(job.id) for job in claimed[:3]] == [None, None, None]
    assert len(await store.dead_letters(10, 0)) == 1


async def test_progress_is_kept_for_the_lease_holder_and_cleared_by_the_next_claim(
    store: JobStore,
) -> None:
    await store.insert([new_job()])
    (job,) = await store.claim("w1", 1, utcnow())  # a lease already run out
    await store.set_progress(
        [ProgressReport(job.id, "w1", 40, "halfway"), ProgressReport(job.id, "w2", 99)]
    )
    stored = await store.get(job.id)
    assert stored is not None
    assert (stored.progress, stored.progress_message) == (40, "halfway")
    await store.schedule_retry(job, utcnow(), "again", ended(job, "again"))
    (again,) = await store.claim("w2", 1, utcnow() + LEASE)
    assert (again.progress, again.progress_message) == (None, None)


async def test_a_type_limit_holds_over_every_claimant(store: JobStore) -> None:
    await store.insert([new_job(type="limited") for _ in range(6)] + [new_job(type="free")])
    two = TypeLimit(concurrency=2)
    first = await store.claim_limited("w1", "limited", two, 5, utcnow() + LEASE)
    assert [job.type for job in first] == ["limited", "limited"]
    assert await store.claim_limited("w2", "limited", two, 5, utcnow() + LEASE) == []
    await store.complete(first[0], ended(first[0]))  # a slot frees
    [third] = await store.claim_limited("w2", "limited", two, 5, utcnow() + LEASE)
    assert third.lease_owner == "w2"
    pending = await store.list_jobs(JobFilter(status=JobStatus.PENDING, type="limited"))
    with pytest.raises(TypeLimitReachedError):
        await store.start_limited(pending[0].id, "w3", utcnow() + LEASE, utcnow(), two)


async def test_a_rate_limit_counts_the_starts_of_the_last_second(store: JobStore) -> None:
    jobs = [new_job(type="limited") for _ in range(5)]
    await store.insert(jobs)
    three_a_second = TypeLimit(rate=3)
    taken = await store.claim_limited("w1", "limited", three_a_second, 2, utcnow() + LEASE)
    taken += await store.claim_limited("w2", "limited", three_a_second, 5, utcnow() + LEASE)
    assert len(taken) == 3
    left = {job.id for job in jobs} - {job.id for job in taken}
    with pytest.raises(TypeLimitReachedError):
        await store.start_limited(left.pop(), "w3", utcnow() + LEASE, utcnow(), three_a_second)


async def test_a_sweep_changes_the_jobs_in_the_plans_status_page_by_page(store: JobStore) -> None:
    base = utcnow() - timedelta(minutes=1)
    failed = [
        new_job(
            status=JobStatus.FAILED, type="a", attempts=5, created_at=base + timedelta(seconds=n)
        )
        for n in range(5)
    ]
    other_type = new_job(status=JobStatus.FAILED, type="b", attempts=5, created_at=base)
    await store.insert([*failed, other_type, new_job(type="a", created_at=base)])
    sweep = Sweep("a", utcnow(), limit=2)
    pages: list[list[Job]] = []
    while page := await store.apply_sweep(RETRY, sweep):
        pages.append(page)
        sweep = sweep.past(page)
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [{job.id for job in page} for page in pages] == [
        {job.id for job in failed[n : n + 2]} for n in (0, 2, 4)
    ]
    assert {(job.status, job.attempts, job.next_run_at) for page in pages for job in page} == {
        (JobStatus.PENDING, 0, None)
    }
    untouched = await store.get(other_type.id)
    assert untouched is not None
    assert untouched.status is JobStatus.FAILED


async def test_a_sweep_passes_over_jobs_behind_its_cursor_or_created_after_it(
    store: JobStore,
) -> None:
    started = utcnow()
    early, late = (
        new_job(status=JobStatus.FAILED, created_at=started - timedelta(seconds=n)) for n in (2, 1)
    )
    after_start = new_job(status=JobStatus.FAILED, created_at=started + timedelta(seconds=1))
    await store.insert([early, late, after_start])
    first = await store.apply_sweep(RETRY, Sweep(None, started, limit=1))
    assert [job.id for job in first] == [early.id]
    fail_again = dataclasses.replace(RETRY, expected_status=JobStatus.PENDING)
    await store.apply(early.id, dataclasses.replace(fail_again, status=JobStatus.FAILED))
    rest = await store.apply_sweep(RETRY, Sweep(None, started, limit=10).past(first))
    assert [job.id for job in rest] == [late.id]  # early failed again: behind the cursor


async def test_the_oldest_due_pending_job_is_found_by_when_it_became_due(store: JobStore) -> None:
    now = utcnow()
    assert await store.oldest_due_pending(now) is None
    created_early = new_job(created_at=now - timedelta(minutes=5))
    due_earlier = new_job(next_run_at=now - timedelta(minutes=9))
    not_due = new_job(created_at=now - timedelta(hours=1), next_run_at=now + LEASE)
    failed = new_job(status=JobStatus.FAILED, created_at=now - timedelta(days=1))
    await store.insert([created_early, not_due, failed])
    assert await store.oldest_due_pending(now) == created_early.created_at
    await store.insert([due_earlier])
    assert await store.oldest_due_pending(now) == due_earlier.next_run_at


async def stored(store: JobStore, job_id: UUID) -> Job:
    job = await store.get(job_id)
    assert job is not None
    return job


async def claimed(store: JobStore, count: int) -> list[Job]:
    jobs: list[Job] = []
    while len(jobs) < count:
        jobs += await store.claim("w1", count, utcnow() + LEASE)
    return jobs


async def test_the_last_parent_to_complete_releases_the_child_once(store: JobStore) -> None:
    parents, child = [new_job() for _ in range(50)], new_job()
    inserted = await store.insert_with_parents(
        [*parents, child], {child.id: [p.id for p in parents]}
    )
    assert {job.id: job.status for job in inserted}[child.id] is JobStatus.WAITING
    running = await claimed(store, 50)
    assert all(job.has_dependants for job in running)
    await asyncio.gather(*(store.complete(job, ended(job), n) for n, job in enumerate(running)))
    released = await store.get(child.id)
    assert released is not None
    assert (released.status, released.pending_parents) == (JobStatus.PENDING, 0)
    results = await store.parent_results(child.id)
    assert sorted(v for v in results.values() if isinstance(v, int)) == list(range(50))
    assert [job.id for job in await store.due_children(running[0].id)] == [child.id]


async def test_a_job_with_no_dependants_is_completed_without_a_fan_in(store: JobStore) -> None:
    await store.insert([new_job()])
    [job] = await claimed(store, 1)
    done = await store.complete(job, ended(job), {"ok": True})
    assert done is not None
    assert (done.status, done.has_dependants, done.pending_parents) == (
        JobStatus.COMPLETED,
        False,
        None,
    )


async def test_a_dependant_of_a_running_job_waits_then_runs(store: JobStore) -> None:
    await store.insert([new_job()])
    [parent] = await claimed(store, 1)
    child = new_job()
    [waiting] = await store.insert_with_parents([child], {child.id: [parent.id]})
    assert (waiting.status, waiting.pending_parents) == (JobStatus.WAITING, 1)
    assert await store.claim("w2", 10, utcnow() + LEASE) == []
    await store.complete(parent, ended(parent), "done")
    [runs] = await store.claim("w2", 10, utcnow() + LEASE)
    assert runs.id == child.id
    assert await store.parent_results(child.id) == {parent.id: "done"}


async def test_a_failed_parent_cancels_or_releases_and_its_retry_re_arms(store: JobStore) -> None:
    parent, cancels, grandchild = new_job(), new_job(), new_job()
    goes_on = new_job(on_parent_failure=OnParentFailure.CONTINUE)
    parents_of = {cancels.id: [parent.id], goes_on.id: [parent.id], grandchild.id: [cancels.id]}
    await store.insert_with_parents([parent, cancels, goes_on, grandchild], parents_of)
    [running] = await claimed(store, 1)
    assert await store.fail(running, "boom", ended(running, "boom")) is not None
    cancelled = await stored(store, cancels.id)
    assert cancelled.status is JobStatus.CANCELLED
    assert cancelled.last_error == f"cancelled: parent job {parent.id} failed"
    assert (await stored(store, grandchild.id)).cancelled_by_parent == cancels.id
    assert (await stored(store, goes_on.id)).status is JobStatus.PENDING
    retry = UpdatePlan(JobStatus.FAILED, JobStatus.PENDING, 0, None, QueueAction.ENQUEUE)
    assert await store.apply(parent.id, retry) is not None
    for job_id in (cancels.id, grandchild.id):
        rearmed = await store.get(job_id)
        assert rearmed is not None
        assert (rearmed.status, rearmed.last_error) == (JobStatus.WAITING, None)


async def test_deleting_a_parent_cancels_its_waiting_children(store: JobStore) -> None:
    parent, child = new_job(), new_job()
    await store.insert_with_parents([parent, child], {child.id: [parent.id]})
    assert await store.delete(parent.id) is not None
    cancelled = await store.get(child.id)
    assert cancelled is not None
    assert cancelled.status is JobStatus.CANCELLED
    assert cancelled.last_error == f"cancelled: parent job {parent.id} was deleted"
