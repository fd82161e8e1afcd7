"""``jobqueue.enqueue`` on each kind of connection: the rows exist after a commit and not
after a rollback, read back through the job store itself."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Session

import jobqueue
from jobqueue.domain.errors import IdempotencyConflictError, InvalidJobError
from jobqueue.domain.jobs import JobStatus
from jobqueue.store import postgres_sql
from jobqueue.store.base import JobStore
from jobqueue.store.factory import open_store, sqlite_path
from jobqueue.store.migrate import migrate_async
from jobqueue.store.postgres import plain_dsn
from tests.integration.enqueue_support import sqlalchemy_url
from tests.services import fresh_postgres_database

Jobs = Sequence[jobqueue.JobRequest]
Transaction = Callable[[str, Jobs, bool], Awaitable[list[UUID]]]
"""Enqueue on a connection of one kind to the database at the URL, then commit (True) or
roll back (False); the ids."""


def _sqlite3(url: str, jobs: Jobs, commit: bool) -> list[UUID]:
    conn = sqlite3.connect(sqlite_path(url), timeout=10)
    try:
        ids = jobqueue.enqueue_many(conn, jobs)
        conn.commit() if commit else conn.rollback()
        return ids
    finally:
        conn.close()


def _sqlalchemy_connection(url: str, jobs: Jobs, commit: bool) -> list[UUID]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            ids = jobqueue.enqueue_many(conn, jobs)
            conn.commit() if commit else conn.rollback()
            return ids
    finally:
        engine.dispose()


def _sqlalchemy_session(url: str, jobs: Jobs, commit: bool) -> list[UUID]:
    engine = sa.create_engine(url)
    try:
        with Session(engine) as session:
            ids = jobqueue.enqueue_many(session, jobs)
            session.commit() if commit else session.rollback()
            return ids
    finally:
        engine.dispose()


def _in_thread(blocking: Callable[[str, Jobs, bool], list[UUID]]) -> Transaction:
    async def run(url: str, jobs: Jobs, commit: bool) -> list[UUID]:
        return await asyncio.to_thread(blocking, url, jobs, commit)

    return run


async def _asyncpg(url: str, jobs: Jobs, commit: bool) -> list[UUID]:
    conn = await asyncpg.connect(plain_dsn(url))
    try:
        transaction = conn.transaction()
        await transaction.start()
        ids = await jobqueue.enqueue_many_async(conn, jobs)
        await (transaction.commit() if commit else transaction.rollback())
        return ids
    finally:
        await conn.close()


async def _asyncpg_pool(url: str, jobs: Jobs, commit: bool) -> list[UUID]:
    pool = await asyncpg.create_pool(plain_dsn(url), min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            transaction = conn.transaction()
            await transaction.start()
            ids = await jobqueue.enqueue_many_async(conn, jobs)
            await (transaction.commit() if commit else transaction.rollback())
            return ids
    finally:
        await pool.close()


async def _async_connection(url: str, jobs: Jobs, commit: bool) -> list[UUID]:
    engine = create_async_engine(sqlalchemy_url(url))
    try:
        async with engine.connect() as conn:
            ids = await jobqueue.enqueue_many_async(conn, jobs)
            await (conn.commit() if commit else conn.rollback())
            return ids
    finally:
        await engine.dispose()


async def _async_session(url: str, jobs: Jobs, commit: bool) -> list[UUID]:
    engine = create_async_engine(sqlalchemy_url(url))
    try:
        async with AsyncSession(engine) as session:
            ids = await jobqueue.enqueue_many_async(session, jobs)
            await (session.commit() if commit else session.rollback())
            return ids
    finally:
        await engine.dispose()


SQLITE_KINDS = {
    "sqlite3": _in_thread(_sqlite3),
    "sqlalchemy-connection": _in_thread(_sqlalchemy_connection),
    "sqlalchemy-session": _in_thread(_sqlalchemy_session),
}
POSTGRES_KINDS = {
    "asyncpg": _asyncpg,
    "asyncpg-pool": _asyncpg_pool,
    "sqlalchemy-async-connection": _async_connection,
    "sqlalchemy-async-session": _async_session,
}
KINDS = {**SQLITE_KINDS, **POSTGRES_KINDS}


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> str:
    """A fresh, migrated SQLite file."""
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    await migrate_async(url)
    return url


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh, migrated PostgreSQL database."""
    async with fresh_postgres_database() as url:
        await migrate_async(url)
        yield url


@pytest.fixture(params=list(KINDS))
def kind(request: pytest.FixtureRequest) -> str:
    """Each test runs once per connection kind."""
    return str(request.param)


@pytest.fixture
def url(kind: str, request: pytest.FixtureRequest) -> str:
    """The database the connection kind works on."""
    fixture = "sqlite_url" if kind in SQLITE_KINDS else "postgres_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
async def store(url: str) -> AsyncIterator[JobStore]:
    """The job store on the same database, to read back what was enqueued."""
    opened = open_store(url)
    yield opened
    await opened.close()


async def test_committed_jobs_exist_as_the_api_would_make_them(
    kind: str, url: str, store: JobStore
) -> None:
    run_at = datetime(2031, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    jobs = [
        jobqueue.JobRequest("send-email", {"to": "a@example.com", "n": [1, 2.5, None]}),
        jobqueue.JobRequest("report", run_at=run_at, priority=-3, max_attempts=2),
    ]
    first, second = await KINDS[kind](url, jobs, True)
    email = await store.get(first)
    report = await store.get(second)
    assert email is not None
    assert report is not None
    assert (email.status, email.attempts, email.max_attempts) == (JobStatus.PENDING, 0, 5)
    assert email.payload == {"to": "a@example.com", "n": [1, 2.5, None]}
    assert email.created_at == email.updated_at
    assert (report.next_run_at, report.priority, report.max_attempts) == (run_at, -3, 2)


async def test_rolled_back_jobs_do_not_exist(kind: str, url: str, store: JobStore) -> None:
    job_ids = await KINDS[kind](url, [jobqueue.JobRequest("noop"), jobqueue.JobRequest("x")], False)
    assert len(job_ids) == 2
    assert [await store.get(job_id) for job_id in job_ids] == [None, None]
    assert sum((await store.count_by_status()).values()) == 0


async def test_an_idempotency_key_returns_the_first_job(
    kind: str, url: str, store: JobStore
) -> None:
    keyed = jobqueue.JobRequest("noop", {"a": 1}, idempotency_key="order-7")
    (first,) = await KINDS[kind](url, [keyed], True)
    again = await KINDS[kind](url, [keyed, keyed], True)
    assert again == [first, first]
    with pytest.raises(IdempotencyConflictError, match="order-7"):
        await KINDS[kind](
            url, [jobqueue.JobRequest("noop", {"a": 2}, idempotency_key="order-7")], True
        )
    assert sum((await store.count_by_status()).values()) == 1


async def test_the_same_key_twice_in_one_call_makes_one_job(kind: str, url: str) -> None:
    keyed = jobqueue.JobRequest("noop", idempotency_key="twice")
    first, second = await KINDS[kind](url, [keyed, keyed], True)
    assert first == second


async def test_a_delay_becomes_the_time_to_run(kind: str, url: str, store: JobStore) -> None:
    before = datetime.now(UTC)
    delayed = jobqueue.JobRequest("noop", delay=timedelta(minutes=5))
    (job_id,) = await KINDS[kind](url, [delayed], True)
    job = await store.get(job_id)
    assert job is not None
    assert job.next_run_at is not None
    assert (
        before + timedelta(minutes=5) <= job.next_run_at <= datetime.now(UTC) + timedelta(minutes=5)
    )


async def test_invalid_jobs_are_refused_before_any_statement(kind: str, url: str) -> None:
    with pytest.raises(InvalidJobError, match="max_attempts"):
        await KINDS[kind](url, [jobqueue.JobRequest("noop", max_attempts=0)], True)


async def test_postgres_notifies_workers_at_commit_only(postgres_url: str) -> None:
    listener = await asyncpg.connect(plain_dsn(postgres_url))
    heard: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    for channel in (postgres_sql.CHANNEL, postgres_sql.OUTBOX_CHANNEL):
        await listener.add_listener(
            channel, lambda _c, _p, ch, payload: heard.put_nowait((ch, payload))
        )
    try:
        await _asyncpg(postgres_url, [jobqueue.JobRequest("noop")], False)
        committed = await _asyncpg(postgres_url, [jobqueue.JobRequest("noop")] * 3, True)
        wake = await asyncio.wait_for(heard.get(), 5)
        outbox = await asyncio.wait_for(heard.get(), 5)
    finally:
        await listener.close()
    assert wake == (postgres_sql.CHANNEL, "")
    assert outbox == (postgres_sql.OUTBOX_CHANNEL, ",".join(map(str, committed)))


async def test_a_large_batch_is_announced_in_payloads_that_fit(postgres_url: str) -> None:
    listener = await asyncpg.connect(plain_dsn(postgres_url))
    payloads: list[str] = []
    await listener.add_listener(postgres_sql.OUTBOX_CHANNEL, lambda *args: payloads.append(args[3]))
    try:
        job_ids = await _asyncpg(postgres_url, [jobqueue.JobRequest("noop")] * 450, True)
        await listener.execute("SELECT 1")  # notifications arrive before the answer
    finally:
        await listener.close()
    assert [len(p.split(",")) for p in payloads] == [200, 200, 50]
    assert [UUID(i) for p in payloads for i in p.split(",")] == job_ids


async def test_asyncpg_outside_a_transaction_commits_at_once(
    postgres_url: str,
) -> None:
    conn = await asyncpg.connect(plain_dsn(postgres_url))
    try:
        job_id = await jobqueue.enqueue_async(conn, "noop")
        assert not conn.is_in_transaction()
    finally:
        await conn.close()
    store = open_store(postgres_url)
    try:
        assert await store.get(job_id) is not None
    finally:
        await store.close()


async def test_other_connections_are_refused_naming_what_is_taken() -> None:
    with pytest.raises(TypeError, match=r"sqlite3\.Connection or a SQLAlchemy"):
        jobqueue.enqueue(object(), "noop")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="asyncpg connection or a SQLAlchemy"):
        await jobqueue.enqueue_async(object(), "noop")
