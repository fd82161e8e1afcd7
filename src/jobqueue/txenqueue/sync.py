"""``enqueue`` and ``enqueue_many`` on a blocking connection: ``sqlite3``, ``psycopg``
(3) or ``psycopg2``, or SQLAlchemy's ``Connection`` or ``Session`` (SQLAlchemy and the
psycopgs are imported only when the application passes such a connection)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias
from uuid import UUID

from jobqueue.txenqueue.dialects import driver_form
from jobqueue.txenqueue.plan import Dialect, EnqueuePlan, Statement, key_taken
from jobqueue.txenqueue.psycopg2_driver import psycopg2_driver
from jobqueue.txenqueue.psycopg_drivers import psycopg_driver
from jobqueue.txenqueue.requests import JobRequest, new_jobs

if TYPE_CHECKING:
    import psycopg
    import psycopg2.extensions
    from sqlalchemy.engine import Connection
    from sqlalchemy.orm import Session

BlockingConnection: TypeAlias = (
    "sqlite3.Connection | psycopg.Connection[Any] | psycopg2.extensions.connection "
    "| Connection | Session"
)
"""The connections ``enqueue`` takes."""


def enqueue(
    conn: BlockingConnection,
    type: str,
    payload: Mapping[str, Any] | None = None,
    *,
    run_at: datetime | None = None,
    delay: timedelta | None = None,
    priority: int = 0,
    max_attempts: int | None = None,
    idempotency_key: str | None = None,
) -> UUID:
    """Insert a job in the transaction ``conn`` is in; it exists once that commits.

    Validated as ``POST /api/jobs`` validates (InvalidJobError naming the field); returns the
    job's id (the first job's, for an idempotency key used before).
    """
    request = JobRequest(
        type, payload or {}, run_at, delay, priority, max_attempts, idempotency_key
    )
    return enqueue_many(conn, [request])[0]


def enqueue_many(conn: BlockingConnection, jobs: Iterable[JobRequest]) -> list[UUID]:
    """Insert the jobs in the transaction ``conn`` is in, in one statement; their ids, in order."""
    requests = new_jobs(jobs)
    if not requests:
        return []
    driver = _driver(conn)
    plan = EnqueuePlan(driver.dialect, requests)
    with driver.transaction():
        lookup = plan.key_lookup()
        holders = [] if lookup is None else driver.fetch(lookup)
        for statement in plan.writes(holders):
            try:
                driver.run(statement)
            except Exception as exc:
                taken = key_taken(exc)
                if taken is None:
                    raise
                raise taken from exc
    return plan.ids


class _Driver(Protocol):
    dialect: Dialect

    def transaction(self) -> contextlib.AbstractContextManager[None]: ...

    def fetch(self, statement: Statement) -> Sequence[Sequence[Any]]: ...

    def run(self, statement: Statement) -> None: ...


def _driver(conn: object) -> _Driver:
    if isinstance(conn, sqlite3.Connection):
        return _Sqlite3(conn)
    on_psycopg = psycopg_driver(conn) or psycopg2_driver(conn)
    if on_psycopg is not None:
        return on_psycopg
    from sqlalchemy.engine import Connection
    from sqlalchemy.orm import Session

    if isinstance(conn, Session):
        return _SqlAlchemy(conn.connection())
    if isinstance(conn, Connection):
        return _SqlAlchemy(conn)
    raise TypeError(
        "jobqueue.enqueue takes a sqlite3.Connection, a psycopg or psycopg2 connection, or a "
        f"SQLAlchemy Connection or Session, not {type(conn).__name__} "
        "(async connections: jobqueue.enqueue_async)"
    )


class _Sqlite3:
    """The standard library's driver: the job commits with the connection's transaction
    (its default mode opens one before the insert)."""

    dialect: Dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """The application's transaction: one statement writes everything."""
        return contextlib.nullcontext()

    def fetch(self, statement: Statement) -> Sequence[Sequence[Any]]:
        rows: list[Sequence[Any]] = self.conn.execute(statement.sql, statement.params).fetchall()
        return rows

    def run(self, statement: Statement) -> None:
        if isinstance(statement.params, list):
            self.conn.executemany(statement.sql, statement.params)
        else:
            self.conn.execute(statement.sql, statement.params)


class _SqlAlchemy:
    """A SQLAlchemy connection: the statements go to its driver in the driver's form. Its
    first statement begins the connection's transaction if none is open (SQLAlchemy's
    autobegin), which the application then commits."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.form = driver_form(conn.dialect)
        self.dialect = self.form.dialect

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """The connection's transaction, begun by the first statement if none is open."""
        return contextlib.nullcontext()

    def fetch(self, statement: Statement) -> Sequence[Sequence[Any]]:
        return list(self.conn.exec_driver_sql(*self.form.render(statement)).all())

    def run(self, statement: Statement) -> None:
        self.conn.exec_driver_sql(*self.form.render(statement))
