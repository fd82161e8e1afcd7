"""What only the PostgreSQL store does: values the database refuses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from jobqueue.domain.jobs import Job, JobFilter, JobStatus, utcnow
from jobqueue.store.base import JobStore, UnstorableValueError
from jobqueue.store.factory import open_store
from tests.integration.test_store import new_job
from tests.unit.factories import ended


@pytest.fixture
def mode() -> str:
    """PostgreSQL only: SQLite stores U+0000 (the API refuses it in every mode)."""
    return "postgres"


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[JobStore]:
    """A PostgreSQL store on a fresh database."""
    sql_store = open_store(database_url)
    yield sql_store
    await sql_store.close()


async def test_a_value_the_database_refuses_fails_only_its_own_create(store: JobStore) -> None:
    refused, fine = new_job(payload={"a": "x\x00y"}), new_job(payload={"a": "xy"})
    statements: list[int] = []
    insert_many = store._insert_many  # type: ignore[attr-defined]

    async def counted(jobs: list[Job]) -> Any:
        statements.append(len(jobs))
        return await insert_many(jobs)

    store._insert_many = counted  # type: ignore[attr-defined]
    # Single creates from concurrent requests share one statement (a group commit).
    outcomes = await asyncio.gather(
        store.insert([refused]), store.insert([fine]), return_exceptions=True
    )
    assert isinstance(outcomes[0], UnstorableValueError)
    assert outcomes[1] == [fine]
    assert [job.id for job in await store.list_jobs(JobFilter())] == [fine.id]
    assert statements == [2, 1, 1]  # together first, then each on its own


async def test_parents_completed_by_two_processes_at_once_release_the_child_once(
    store: JobStore, database_url: str
) -> None:
    parents, child = [new_job() for _ in range(40)], new_job()
    await store.insert_with_parents([*parents, child], {child.id: [p.id for p in parents]})
    running = await store.claim("w1", 40, utcnow() + timedelta(minutes=1))
    other = open_store(database_url)
    try:
        halves = (store, other)
        await asyncio.gather(
            *(halves[n % 2].complete(job, ended(job)) for n, job in enumerate(running))
        )
    finally:
        await other.close()
    released = await store.get(child.id)
    assert released is not None
    assert (released.status, released.pending_parents) == (JobStatus.PENDING, 0)


async def test_a_dependant_inserted_while_its_parent_completes_is_never_stranded(
    store: JobStore, database_url: str
) -> None:
    other = open_store(database_url)
    try:
        for _ in range(20):
            await store.insert([new_job()])
            [parent] = await store.claim("w1", 1, utcnow() + timedelta(minutes=1))
            child = new_job()
            await asyncio.gather(
                store.complete(parent, ended(parent)),
                other.insert_with_parents([child], {child.id: [parent.id]}),
            )
            stored = await store.get(child.id)
            assert stored is not None
            assert (stored.status, stored.pending_parents) == (JobStatus.PENDING, 0)
    finally:
        await other.close()
