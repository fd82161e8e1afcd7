"""``enqueue_async`` and ``enqueue_many_async`` on an async connection: ``asyncpg`` (a
connection, or one acquired from a pool), ``psycopg.AsyncConnection``, or SQLAlchemy's
``AsyncConnection`` or ``AsyncSession``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias
from uuid import UUID

import asyncpg
import asyncpg.pool

from jobqueue.txenqueue.dialects import driver_form
from jobqueue.txenqueue.plan import Dialect, EnqueuePlan, Statement, key_taken
from jobqueue.txenqueue.psycopg_drivers import async_psycopg_driver
from jobqueue.txenqueue.requests import JobRequest, new_jobs

if TYPE_CHECKING:
    import psycopg
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

AsyncpgConnection: TypeAlias = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy
"""An asyncpg connection, or one acquired from a pool."""

AsyncConnectionKind: TypeAlias = (
    "AsyncpgConnection | psycopg.AsyncConnection[Any] | AsyncConnection | AsyncSession"
)
"""The connections ``enqueue_async`` takes."""


async def enqueue_async(
    conn: AsyncConnectionKind,
    type: str,
    payload: Mapping[str, Any] | None = None,
    *,
    run_at: datetime | None = None,
    delay: timedelta | None = None,
    priority: int = 0,
    max_attempts: int | None = None,
    idempotency_key: str | None = None,
) -> UUID:
    """Insert a job in the transaction ``conn`` is in; it exists once that commits, and
    idle workers are woken then. Validated as ``POST /api/jobs`` validates (InvalidJobError
    naming the field); returns the job's id (the first job's, for a key used before)."""
    request = JobRequest(
        type, payload or {}, run_at, delay, priority, max_attempts, idempotency_key
    )
    return (await enqueue_many_async(conn, [request]))[0]


async def enqueue_many_async(conn: AsyncConnectionKind, jobs: Iterable[JobRequest]) -> list[UUID]:
    """Insert the jobs in the transaction ``conn`` is in, in one statement; their ids, in order."""
    requests = new_jobs(jobs)
    if not requests:
        return []
    driver = await _driver(conn)
    plan = EnqueuePlan(driver.dialect, requests)
    async with driver.transaction():
        lookup = plan.key_lookup()
        holders = [] if lookup is None else await driver.fetch(lookup)
        for statement in plan.writes(holders):
            try:
                await driver.run(statement)
            except Exception as exc:
                taken = key_taken(exc)
                if taken is None:
                    raise
                raise taken from exc
    return plan.ids


class _AsyncDriver(Protocol):
    dialect: Dialect

    def transaction(self) -> contextlib.AbstractAsyncContextManager[None]: ...

    async def fetch(self, statement: Statement) -> Sequence[Sequence[Any]]: ...

    async def run(self, statement: Statement) -> None: ...


async def _driver(conn: object) -> _AsyncDriver:
    if isinstance(conn, asyncpg.Connection | asyncpg.pool.PoolConnectionProxy):
        return _Asyncpg(conn)
    on_psycopg = async_psycopg_driver(conn)
    if on_psycopg is not None:
        return on_psycopg
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

    if isinstance(conn, AsyncSession):
        return _AsyncSqlAlchemy(await conn.connection())
    if isinstance(conn, AsyncConnection):
        return _AsyncSqlAlchemy(conn)
    raise TypeError(
        "jobqueue.enqueue_async takes an asyncpg connection, a psycopg AsyncConnection, or a "
        f"SQLAlchemy AsyncConnection or AsyncSession, not {type(conn).__name__} "
        "(blocking connections: jobqueue.enqueue)"
    )


class _Asyncpg:
    """asyncpg runs each statement on its own outside a transaction: then the enqueue opens
    one, so that the jobs and their notification commit together."""

    dialect: Dialect = "postgresql"

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        if self.conn.is_in_transaction():
            yield
            return
        async with self.conn.transaction():
            yield

    async def fetch(self, statement: Statement) -> Sequence[Sequence[Any]]:
        rows: list[Sequence[Any]] = await self.conn.fetch(statement.sql, *statement.params)
        return rows

    async def run(self, statement: Statement) -> None:
        await self.conn.execute(statement.sql, *statement.params)


class _AsyncSqlAlchemy:
    """A SQLAlchemy async connection (it begins a transaction itself): the statements go to
    its driver in the driver's form."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self.form = driver_form(conn.dialect)
        self.dialect = self.form.dialect

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        yield

    async def fetch(self, statement: Statement) -> Sequence[Sequence[Any]]:
        result = await self.conn.exec_driver_sql(*self.form.render(statement))
        return list(result.all())

    async def run(self, statement: Statement) -> None:
        await self.conn.exec_driver_sql(*self.form.render(statement))
