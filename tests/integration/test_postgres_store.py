"""What only the PostgreSQL store does: values the database refuses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from jobqueue.domain.jobs import Job, JobFilter
from jobqueue.store.base import JobStore, UnstorableValueError
from jobqueue.store.factory import open_store
from tests.integration.test_store import new_job


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
