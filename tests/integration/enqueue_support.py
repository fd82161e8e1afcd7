"""The application's side of the transactional-enqueue tests: its own connections to the
service's database, and a look into BullMQ's keys."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

import asyncpg
import redis
import sqlalchemy as sa

import jobqueue
from jobqueue.queue.bullmq_wire import QUEUE_NAME
from jobqueue.store.factory import sqlite_path
from jobqueue.store.postgres import plain_dsn


def is_sqlite(database_url: str) -> bool:
    """The service's database is a SQLite file."""
    return database_url.startswith("sqlite")


def sqlalchemy_url(database_url: str, driver: str = "asyncpg") -> str:
    """The URL for SQLAlchemy: the pysqlite driver on SQLite, ``driver`` on PostgreSQL."""
    if is_sqlite(database_url):
        return database_url
    return f"postgresql+{driver}://" + plain_dsn(database_url).partition("://")[2]


def sqlite_transaction(
    database_url: str, jobs: Sequence[jobqueue.JobRequest], *, commit: bool
) -> list[UUID]:
    """Enqueue ``jobs`` on a connection of its own, then commit or roll back (blocking: run
    it in a thread; SQLite's busy timeout makes concurrent writers take turns)."""
    conn = sqlite3.connect(sqlite_path(database_url), timeout=30)
    try:
        ids = jobqueue.enqueue_many(conn, jobs)
        if commit:
            conn.commit()
        else:
            conn.rollback()
        return ids
    finally:
        conn.close()


async def postgres_transaction(
    conn: asyncpg.Connection, jobs: Sequence[jobqueue.JobRequest], *, commit: bool
) -> list[UUID]:
    """Enqueue ``jobs`` in a transaction of ``conn``, then commit or roll back."""
    transaction = conn.transaction()
    await transaction.start()
    try:
        ids = await jobqueue.enqueue_many_async(conn, jobs)
    except BaseException:
        await transaction.rollback()
        raise
    if commit:
        await transaction.commit()
    else:
        await transaction.rollback()
    return ids


def psycopg_transaction(
    engine: sa.Engine, jobs: Sequence[jobqueue.JobRequest], *, commit: bool
) -> list[UUID]:
    """Enqueue ``jobs`` in ``engine.begin()``'s transaction (a ``postgresql+psycopg``
    engine: blocking, run it in a thread), then commit or roll back."""
    with engine.begin() as conn:
        ids = jobqueue.enqueue_many(conn, jobs)
        if not commit:
            conn.rollback()
    return ids


def _psycopg_transaction(
    database_url: str, jobs: Sequence[jobqueue.JobRequest], *, commit: bool
) -> list[UUID]:
    engine = sa.create_engine(sqlalchemy_url(database_url, "psycopg"))
    try:
        return psycopg_transaction(engine, jobs, commit=commit)
    finally:
        engine.dispose()


async def application_transaction(
    database_url: str,
    jobs: Sequence[jobqueue.JobRequest],
    *,
    commit: bool,
    application: str = "native",
) -> list[UUID]:
    """One application transaction on the service's database: on the database's native
    driver (sqlite3, asyncpg), or SQLAlchemy on psycopg (``application="psycopg"``)."""
    if application == "psycopg":
        return await asyncio.to_thread(_psycopg_transaction, database_url, jobs, commit=commit)
    if is_sqlite(database_url):
        return await asyncio.to_thread(sqlite_transaction, database_url, jobs, commit=commit)
    conn = await asyncpg.connect(plain_dsn(database_url))
    try:
        return await postgres_transaction(conn, jobs, commit=commit)
    finally:
        await conn.close()


def bullmq_mentions(redis_url: str, job_id: UUID) -> list[str]:
    """Every BullMQ key of `job-queue` that names ``job_id``, or holds it as a member."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    wanted = str(job_id)
    found: list[str] = []
    try:
        for key in client.scan_iter(f"bull:{QUEUE_NAME}:*"):
            if wanted in key:
                found.append(key)
            elif wanted in _members(client, key):
                found.append(f"{key} (member)")
    finally:
        client.close()
    return found


def _members(client: redis.Redis, key: str) -> list[str]:
    kind = client.type(key)
    members: Iterable[Any] = ()
    if kind == "list":
        members = client.lrange(key, 0, -1)
    elif kind == "zset":
        members = client.zrange(key, 0, -1)
    elif kind == "set":
        members = client.smembers(key)
    return [str(member) for member in members]
