"""``jobqueue.enqueue`` on each kind of connection: the rows exist after a commit and not
after a rollback, read back through the job store itself."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import psycopg
import psycopg2
import pytest
import sqlalchemy as sa
from psycopg.rows import dict_row
from psycopg2.extensions import TRANSACTION_STATUS_IDLE
from psycopg2.extras import RealDictCursor
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

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
Blocking = Callable[[str, Jobs, bool], list[UUID]]


def _sqlite3(url: str, jobs: Jobs, commit: bool) -> list[UUID]:
    conn = sqlite3.connect(sqlite_path(url), timeout=10)
    try:
        ids = jobqueue.enqueue_many(conn, jobs)
        conn.commit() if commit else conn.rollback()
        return ids
    finally:
        conn.close()


def _psycopg(url: str, jobs: Jobs, commit: bool) -> list[UUID]:
    with psycopg.connect(plain_dsn(url)) as conn:
        ids = jobqueue.enqueue_many(conn, jobs)
        conn.commit() if commit else conn.rollback()
        return ids


def _psycopg2(url: str, jobs: Jobs, commit: bool) -> list[UUID]:
    conn = psycopg2.connect(plain_dsn(url))
    try:
        ids = jobqueue.enqueue_many(conn, jobs)
        conn.commit() if commit else conn.rollback()
        return ids
    finally:
        conn.close()


def _sqlalchemy_connection(driver: str) -> Blocking:
    def transaction(url: str, jobs: Jobs, commit: bool) -> list[UUID]:
        engine = sa.create_engine(sqlalchemy_url(url, driver))
        try:
            with engine.connect() as conn:
                ids = jobqueue.enqueue_many(conn, jobs)
                conn.commit() if commit else conn.rollback()
                return ids
        finally:
            engine.dispose()

    return transaction


def _sqlalchemy_session(driver: str) -> Blocking:
    def transaction(url: str, jobs: Jobs, commit: bool) -> list[UUID]:
        engine = sa.create_engine(sqlalchemy_url(url, driver))
        try:
            with Session(engine) as session:
                ids = jobqueue.enqueue_many(session, jobs)
                session.commit() if commit else session.rollback()
                return ids
        finally:
            engine.dispose()

    return transaction


def _in_thread(blocking: Blocking) -> Transaction:
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


async def _async_psycopg(url: str, jobs: Jobs, commit: bool) -> list[UUID]:
    async with await psycopg.AsyncConnection.connect(plain_dsn(url)) as conn:
        ids = await jobqueue.enqueue_many_async(conn, jobs)
        await (conn.commit() if commit else conn.rollback())
        return ids


def _async_connection(driver: str) -> Transaction:
    async def transaction(url: str, jobs: Jobs, commit: bool) -> list[UUID]:
        engine = create_async_engine(sqlalchemy_url(url, driver))
        try:
            async with engine.connect() as conn:
                ids = await jobqueue.enqueue_many_async(conn, jobs)
                await (conn.commit() if commit else conn.rollback())
                return ids
        finally:
            await engine.dispose()

    return transaction


def _async_session(driver: str) -> Transaction:
    async def transaction(url: str, jobs: Jobs, commit: bool) -> list[UUID]:
        engine = create_async_engine(sqlalchemy_url(url, driver))
        try:
            async with AsyncSession(engine) as session:
                ids = await jobqueue.enqueue_many_async(session, jobs)
                await (session.commit() if commit else session.rollback())
                return ids
        finally:
            await engine.dispose()

    return transaction


SQLITE_KINDS = {
    "sqlite3": _in_thread(_sqlite3),
    "sqlalchemy-connection": _in_thread(_sqlalchemy_connection("pysqlite")),
    "sqlalchemy-session": _in_thread(_sqlalchemy_session("pysqlite")),
}
POSTGRES_KINDS = {
    "asyncpg": _asyncpg,
    "asyncpg-pool": _asyncpg_pool,
    "sqlalchemy-async-connection": _async_connection("asyncpg"),
    "sqlalchemy-async-session": _async_session("asyncpg"),
    "psycopg": _in_thread(_psycopg),
    "psycopg-async": _async_psycopg,
    "sqlalchemy-psycopg-connection": _in_thread(_sqlalchemy_connection("psycopg")),
    "sqlalchemy-psycopg-session": _in_thread(_sqlalchemy_session("psycopg")),
    "sqlalchemy-psycopg-async-connection": _async_connection("psycopg"),
    "sqlalchemy-psycopg-async-session": _async_session("psycopg"),
    "psycopg2": _in_thread(_psycopg2),
    "sqlalchemy-psycopg2-connection": _in_thread(_sqlalchemy_connection("psycopg2")),
    "sqlalchemy-psycopg2-session": _in_thread(_sqlalchemy_session("psycopg2")),
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
        jobqueue.JobRequest("send-email", {"to": "a@example.com", "n": [1, 2.5, None, "100% $1"]}),
        jobqueue.JobRequest("report", run_at=run_at, priority=-3, max_attempts=2),
    ]
    first, second = await KINDS[kind](url, jobs, True)
    email = await store.get(first)
    report = await store.get(second)
    assert email is not None
    assert report is not None
    assert (email.status, email.attempts, email.max_attempts) == (JobStatus.PENDING, 0, 5)
    assert email.payload == {"to": "a@example.com", "n": [1, 2.5, None, "100% $1"]}
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


@pytest.fixture(params=list(POSTGRES_KINDS))
def postgres_kind(request: pytest.FixtureRequest) -> str:
    """Each PostgreSQL-only test runs once per PostgreSQL connection kind."""
    return str(request.param)


@contextlib.asynccontextmanager
async def listening(url: str) -> AsyncIterator[asyncio.Queue[tuple[str, str]]]:
    """(channel, payload) of each notification on the workers' and the outbox's channels."""
    listener = await asyncpg.connect(plain_dsn(url))
    heard: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    for channel in (postgres_sql.CHANNEL, postgres_sql.OUTBOX_CHANNEL):
        await listener.add_listener(
            channel, lambda _c, _p, ch, payload: heard.put_nowait((ch, payload))
        )
    try:
        yield heard
        await listener.execute("SELECT 1")  # notifications arrive before the answer
    finally:
        await listener.close()


async def test_postgres_notifies_workers_at_commit_only(
    postgres_kind: str, postgres_url: str
) -> None:
    transaction = POSTGRES_KINDS[postgres_kind]
    async with listening(postgres_url) as heard:
        await transaction(postgres_url, [jobqueue.JobRequest("noop")], False)
        committed = await transaction(postgres_url, [jobqueue.JobRequest("noop")] * 3, True)
        wake = await asyncio.wait_for(heard.get(), 5)
        outbox = await asyncio.wait_for(heard.get(), 5)
    assert wake == (postgres_sql.CHANNEL, "")
    assert outbox == (postgres_sql.OUTBOX_CHANNEL, ",".join(map(str, committed)))
    assert heard.empty()


async def test_a_large_batch_is_announced_in_payloads_that_fit(
    postgres_kind: str, postgres_url: str
) -> None:
    async with listening(postgres_url) as heard:
        job_ids = await POSTGRES_KINDS[postgres_kind](
            postgres_url, [jobqueue.JobRequest("noop")] * 450, True
        )
    payloads = [heard.get_nowait() for _ in range(heard.qsize())]
    outbox = [payload for channel, payload in payloads if channel == postgres_sql.OUTBOX_CHANNEL]
    assert [len(p.split(",")) for p in outbox] == [200, 200, 50]
    assert [UUID(i) for p in outbox for i in p.split(",")] == job_ids


async def _asyncpg_autocommit(url: str) -> tuple[UUID, bool]:
    conn = await asyncpg.connect(plain_dsn(url))
    try:
        return await jobqueue.enqueue_async(conn, "noop"), conn.is_in_transaction()
    finally:
        await conn.close()


def _psycopg_autocommit(url: str) -> tuple[UUID, bool]:
    with psycopg.connect(plain_dsn(url), autocommit=True) as conn:
        job_id = jobqueue.enqueue(conn, "noop")
        return job_id, conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE


async def _async_psycopg_autocommit(url: str) -> tuple[UUID, bool]:
    async with await psycopg.AsyncConnection.connect(plain_dsn(url), autocommit=True) as conn:
        job_id = await jobqueue.enqueue_async(conn, "noop")
        return job_id, conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE


def _psycopg2_autocommit(url: str) -> tuple[UUID, bool]:
    conn = psycopg2.connect(plain_dsn(url))
    try:
        conn.autocommit = True
        job_id = jobqueue.enqueue(conn, "noop")
        return job_id, conn.info.transaction_status != TRANSACTION_STATUS_IDLE
    finally:
        conn.close()


AUTOCOMMIT: dict[str, Callable[[str], Awaitable[tuple[UUID, bool]]]] = {
    "asyncpg": _asyncpg_autocommit,
    "psycopg": lambda url: asyncio.to_thread(_psycopg_autocommit, url),
    "psycopg-async": _async_psycopg_autocommit,
    "psycopg2": lambda url: asyncio.to_thread(_psycopg2_autocommit, url),
}
"""Enqueue one job on a connection in autocommit mode, outside any transaction: its id, and
whether the connection is left in a transaction."""


@pytest.mark.parametrize("driver", list(AUTOCOMMIT))
async def test_outside_a_transaction_the_job_commits_at_once_with_its_notifications(
    driver: str, postgres_url: str
) -> None:
    async with listening(postgres_url) as heard:
        job_id, in_transaction = await AUTOCOMMIT[driver](postgres_url)
        wake = await asyncio.wait_for(heard.get(), 5)
        outbox = await asyncio.wait_for(heard.get(), 5)
    assert not in_transaction
    assert (wake, outbox) == (
        (postgres_sql.CHANNEL, ""),
        (postgres_sql.OUTBOX_CHANNEL, str(job_id)),
    )
    store = open_store(postgres_url)
    try:
        assert await store.get(job_id) is not None
    finally:
        await store.close()


def test_psycopg_autocommit_inside_a_transaction_block_rolls_back_with_it(
    postgres_url: str,
) -> None:
    enqueued: list[UUID] = []

    def enqueue_then_fail(conn: psycopg.Connection[Any]) -> None:
        with conn.transaction():
            enqueued.append(jobqueue.enqueue(conn, "noop"))
            raise ZeroDivisionError

    with psycopg.connect(plain_dsn(postgres_url), autocommit=True) as conn:
        with pytest.raises(ZeroDivisionError):
            enqueue_then_fail(conn)
        count = conn.execute("SELECT count(*) FROM jobs").fetchone()
    assert len(enqueued) == 1
    assert count == (0,)


def test_psycopg2_autocommit_ends_its_own_transaction_when_the_enqueue_fails(
    postgres_url: str,
) -> None:
    (first,) = _psycopg2(postgres_url, [jobqueue.JobRequest("noop", idempotency_key="k")], True)
    conn = psycopg2.connect(plain_dsn(postgres_url))
    try:
        conn.autocommit = True
        with pytest.raises(IdempotencyConflictError):
            jobqueue.enqueue(conn, "other", idempotency_key="k")
        assert conn.info.transaction_status == TRANSACTION_STATUS_IDLE
        assert jobqueue.enqueue(conn, "noop", idempotency_key="k") == first
    finally:
        conn.close()


def test_the_connections_row_and_cursor_factories_do_not_matter(postgres_url: str) -> None:
    keyed = jobqueue.JobRequest("noop", idempotency_key="factories")
    dsn = plain_dsn(postgres_url)
    with psycopg.connect(dsn, row_factory=dict_row, cursor_factory=psycopg.RawCursor) as conn:
        first = jobqueue.enqueue_many(conn, [keyed])
        conn.commit()
        assert jobqueue.enqueue_many(conn, [keyed]) == first
    conn2 = psycopg2.connect(dsn, cursor_factory=RealDictCursor)
    try:
        assert jobqueue.enqueue_many(conn2, [keyed]) == first
    finally:
        conn2.close()


async def test_psycopg_async_factories_do_not_matter(postgres_url: str) -> None:
    keyed = jobqueue.JobRequest("noop", idempotency_key="factories")
    (first,) = await POSTGRES_KINDS["asyncpg"](postgres_url, [keyed], True)
    async with await psycopg.AsyncConnection.connect(
        plain_dsn(postgres_url), row_factory=dict_row, cursor_factory=psycopg.AsyncRawCursor
    ) as conn:
        assert await jobqueue.enqueue_many_async(conn, [keyed]) == [first]


def _open_psycopg(url: str) -> Any:
    return psycopg.connect(plain_dsn(url))


def _open_psycopg2(url: str) -> Any:
    return psycopg2.connect(plain_dsn(url))


def _open_sqlalchemy(driver: str) -> Callable[[str], Any]:
    return lambda url: sa.create_engine(sqlalchemy_url(url, driver), poolclass=NullPool).connect()


RACERS = {
    "psycopg": _open_psycopg,
    "psycopg2": _open_psycopg2,
    "sqlalchemy-psycopg": _open_sqlalchemy("psycopg"),
    "sqlalchemy-psycopg2": _open_sqlalchemy("psycopg2"),
}
"""A blocking connection of each psycopg kind, not in a transaction yet (closed by the test)."""


@pytest.mark.parametrize("racer", list(RACERS))
def test_a_key_committed_by_a_concurrent_transaction_is_reported_as_taken(
    racer: str, postgres_url: str
) -> None:
    first = psycopg.connect(plain_dsn(postgres_url))
    second = RACERS[racer](postgres_url)
    try:
        job_id = jobqueue.enqueue(first, "noop", idempotency_key="race")
        with ThreadPoolExecutor(max_workers=1) as thread:
            late = thread.submit(jobqueue.enqueue, second, "noop", idempotency_key="race")
            _wait_until_blocked(first, late)
            first.commit()
            with pytest.raises(jobqueue.IdempotencyKeyTakenError, match="roll back"):
                late.result(timeout=10)
        second.rollback()
        assert jobqueue.enqueue(second, "noop", idempotency_key="race") == job_id
    finally:
        first.close()
        second.close()


def _wait_until_blocked(holder: psycopg.Connection[Any], late: Future[UUID]) -> None:
    """Until the late insert waits for the holder's lock (it has read the keys before the
    holder commits, so only the unique index can stop it)."""
    deadline = time.monotonic() + 10
    query = (
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    with psycopg.connect(holder.info.dsn, autocommit=True) as watcher:
        while time.monotonic() < deadline and not late.done():
            row = watcher.execute(query).fetchone()
            if row is not None and row[0] > 0:
                return
            time.sleep(0.01)
    raise AssertionError(f"the second insert never waited for the first ({late})")


async def test_other_connections_are_refused_naming_what_is_taken() -> None:
    with pytest.raises(TypeError, match=r"sqlite3\.Connection, a psycopg or psycopg2 connection"):
        jobqueue.enqueue(object(), "noop")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="asyncpg connection, a psycopg AsyncConnection"):
        await jobqueue.enqueue_async(object(), "noop")


async def test_a_psycopg_connection_given_to_the_other_function_names_the_right_one(
    postgres_url: str,
) -> None:
    async with await psycopg.AsyncConnection.connect(plain_dsn(postgres_url)) as conn:
        with pytest.raises(TypeError, match=r"\(async connections: jobqueue\.enqueue_async\)"):
            jobqueue.enqueue(conn, "noop")  # type: ignore[arg-type]
    with (
        psycopg.connect(plain_dsn(postgres_url)) as blocking,
        pytest.raises(TypeError, match=r"\(blocking connections: jobqueue\.enqueue\)"),
    ):
        await jobqueue.enqueue_async(blocking, "noop")
