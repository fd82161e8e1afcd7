"""Transactional enqueue in all three modes, with a running worker: a job enqueued in the
application's transaction runs once that commits, and never after a rollback.

The application is on the database's native driver (sqlite3 or SQLAlchemy's pysqlite on
SQLite, asyncpg on PostgreSQL) and, on PostgreSQL, also SQLAlchemy on psycopg (blocking)."""

from __future__ import annotations

import asyncio
import functools
import random
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

import jobqueue
from jobqueue.store.postgres import plain_dsn
from tests.integration import behaviour_handlers
from tests.integration.conftest import Service, make_settings, running_service
from tests.integration.enqueue_support import (
    application_transaction,
    bullmq_mentions,
    is_sqlite,
    postgres_transaction,
    psycopg_transaction,
    sqlalchemy_url,
    sqlite_transaction,
)

FLAKY = jobqueue.JobRequest("flaky", {"failures": 0})

APPLICATIONS = [
    ("sqlite", "native"),
    ("postgres", "native"),
    ("postgres", "psycopg"),
    ("redis", "native"),
    ("redis", "psycopg"),
]
"""(mode, the application's driver): psycopg is PostgreSQL's, so it pairs with those modes."""

each_application = pytest.mark.parametrize(
    ("mode", "application"),
    APPLICATIONS,
    indirect=["mode"],
    ids=[f"{mode}-{driver}" for mode, driver in APPLICATIONS],
)
"""Run the test once per pair of APPLICATIONS."""


class ApplicationError(Exception):
    """Raised by the application's own code between the enqueue and the commit."""


async def assert_never_ran(service: Service, job_id: UUID) -> None:
    """Once a job committed after ``job_id``'s rollback has completed (the worker is past
    it), ``job_id`` has no row, ran nowhere and, in Redis mode, has nothing in BullMQ."""
    (later,) = await application_transaction(_url(service), [FLAKY], commit=True)
    await service.wait_for(str(later), "completed")
    assert (await service.client.get(f"/api/jobs/{job_id}")).status_code == 404
    assert job_id not in behaviour_handlers.calls
    redis_url = service.runtime.settings.queue_url
    if redis_url is not None:
        assert bullmq_mentions(redis_url, job_id) == []


def _url(service: Service) -> str:
    return service.runtime.settings.database_url


@each_application
async def test_a_committed_job_runs(service: Service, application: str) -> None:
    (job_id,) = await application_transaction(
        _url(service), [FLAKY], commit=True, application=application
    )
    job = await service.wait_for(str(job_id), "completed")
    assert job["attempts"] == 1
    assert job["maxAttempts"] == 5
    assert behaviour_handlers.calls[job_id] == [1]


@each_application
async def test_a_rolled_back_job_never_exists_nor_runs(service: Service, application: str) -> None:
    (job_id,) = await application_transaction(
        _url(service), [FLAKY], commit=False, application=application
    )
    await assert_never_ran(service, job_id)


@each_application
async def test_an_exception_before_the_commit_leaves_no_job(
    service: Service, application: str
) -> None:
    enqueued: list[UUID] = []
    url = _url(service)
    with pytest.raises(ApplicationError):
        await _enqueue_then_fail(url, application, enqueued)
    (job_id,) = enqueued
    await assert_never_ran(service, job_id)


async def _enqueue_then_fail(url: str, application: str, enqueued: list[UUID]) -> None:
    """``with engine.begin()`` (SQLAlchemy, blocking) on SQLite and on psycopg, ``async with``
    on asyncpg."""
    if is_sqlite(url) or application == "psycopg":
        await asyncio.to_thread(_fail_in_engine_begin, sqlalchemy_url(url, "psycopg"), enqueued)
    else:
        await _fail_in_async_engine_begin(url, enqueued)


def _fail_in_engine_begin(url: str, enqueued: list[UUID]) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            enqueued.append(jobqueue.enqueue(conn, "flaky", {"failures": 0}))
            raise ApplicationError("the application fails after enqueueing")
    finally:
        engine.dispose()


async def _fail_in_async_engine_begin(url: str, enqueued: list[UUID]) -> None:
    engine = create_async_engine(sqlalchemy_url(url))
    try:
        async with engine.begin() as conn:
            enqueued.append(await jobqueue.enqueue_async(conn, "flaky", {"failures": 0}))
            raise ApplicationError("the application fails after enqueueing")
    finally:
        await engine.dispose()


@each_application
async def test_of_100_concurrent_transactions_exactly_the_committed_half_runs_once(
    service: Service, application: str
) -> None:
    url = _url(service)
    commits = [True, False] * 50
    random.Random(11).shuffle(commits)
    if application == "psycopg":
        outcomes = await _in_psycopg_threads(url, commits)
    elif is_sqlite(url):
        outcomes = await asyncio.gather(
            *(asyncio.to_thread(sqlite_transaction, url, [FLAKY], commit=c) for c in commits)
        )
    else:
        async with asyncpg.create_pool(plain_dsn(url), min_size=1, max_size=20) as pool:
            outcomes = await asyncio.gather(*(_pooled(pool, commit) for commit in commits))
    committed = {ids[0] for ids, commit in zip(outcomes, commits, strict=True) if commit}
    rolled_back = {ids[0] for ids, commit in zip(outcomes, commits, strict=True) if not commit}
    assert len(committed) == len(rolled_back) == 50
    for job_id in committed:
        await service.wait_for(str(job_id), "completed")
    stats = (await service.client.get("/api/jobs/stats")).json()
    assert stats == {
        "pending": 0,
        "processing": 0,
        "completed": 50,
        "failed": 0,
        "cancelled": 0,
        "waiting": 0,
    }
    assert {job_id: behaviour_handlers.calls[job_id] for job_id in committed} == {
        job_id: [1] for job_id in committed
    }
    assert not rolled_back & set(behaviour_handlers.calls)


async def _pooled(pool: asyncpg.Pool, commit: bool) -> list[UUID]:
    async with pool.acquire() as conn:
        return await postgres_transaction(conn, [FLAKY], commit=commit)


async def _in_psycopg_threads(url: str, commits: list[bool]) -> list[list[UUID]]:
    """Each transaction in one of 20 threads, on a pool of 20 psycopg connections."""
    engine = sa.create_engine(sqlalchemy_url(url, "psycopg"), pool_size=20, max_overflow=0)
    loop = asyncio.get_running_loop()
    try:
        with ThreadPoolExecutor(max_workers=20) as threads:
            transactions = [
                functools.partial(psycopg_transaction, engine, [FLAKY], commit=commit)
                for commit in commits
            ]
            return await asyncio.gather(
                *(loop.run_in_executor(threads, transaction) for transaction in transactions)
            )
    finally:
        engine.dispose()


async def test_a_delayed_job_waits_for_its_time(service: Service) -> None:
    delayed = jobqueue.JobRequest("flaky", {"failures": 0}, delay=timedelta(milliseconds=700))
    (job_id,) = await application_transaction(_url(service), [delayed], commit=True)
    pending = (await service.client.get(f"/api/jobs/{job_id}")).json()
    assert pending["status"] == "pending"
    assert pending["nextRunAt"] is not None
    await service.wait_for(str(job_id), "completed")
    assert behaviour_handlers.started_at[job_id]


@pytest.mark.parametrize("mode", ["redis"], indirect=True)
async def test_redis_mode_publishes_at_commit_without_waiting_for_the_reconciler(
    database_url: str, tmp_path: Path
) -> None:
    # A reconciler that waits a minute: only the outbox can put the job on BullMQ in time.
    settings = make_settings(database_url, tmp_path, reconcile_interval_ms=60_000)
    async with running_service(settings) as service:
        (job_id,) = await application_transaction(database_url, [FLAKY], commit=True)
        await service.wait_for(str(job_id), "completed", timeout=10)


@pytest.mark.parametrize("mode", ["redis"], indirect=True)
async def test_redis_mode_jobs_committed_while_no_worker_listens_are_reconciled(
    database_url: str, tmp_path: Path
) -> None:
    (job_id,) = await application_transaction(database_url, [FLAKY], commit=True)
    async with running_service(make_settings(database_url, tmp_path)) as service:
        await service.wait_for(str(job_id), "completed", timeout=15)
