"""Async engines for SQLite and PostgreSQL from one DATABASE_URL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
_IMMEDIATE = "sqlite_begin_immediate"


def async_url(database_url: str) -> URL:
    """Map a plain ``sqlite://`` or ``postgresql://`` URL to its async driver."""
    url = make_url(database_url)
    backend = url.get_backend_name()
    if backend not in _ASYNC_DRIVERS:
        raise ValueError(
            f"DATABASE_URL must start with sqlite:// or postgresql:// (got {backend}://)"
        )
    return url.set(drivername=_ASYNC_DRIVERS[backend])


def create_engine(database_url: str, *, timeout_s: float = 5.0, pool_size: int = 10) -> AsyncEngine:
    """An engine whose waits for locks and connections are bounded by ``timeout_s``."""
    url = async_url(database_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, timeout_s)
    return _postgres_engine(url, timeout_s, pool_size)


def writer(engine: AsyncEngine) -> AsyncEngine:
    """The same engine, but SQLite transactions take the write lock when they begin.

    Without it a transaction that reads and then writes can fail at once with
    "database is locked" instead of waiting for the other writer.
    """
    return engine.execution_options(**{_IMMEDIATE: True})


def _sqlite_engine(url: URL, timeout_s: float) -> AsyncEngine:
    engine = create_async_engine(url, connect_args={"timeout": timeout_s})

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin event issue BEGIN itself (pysqlite would defer it).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _postgres_engine(url: URL, timeout_s: float, pool_size: int) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=timeout_s,
        pool_pre_ping=True,
        connect_args={
            "timeout": timeout_s,
            "command_timeout": timeout_s * 2,
            "server_settings": {"application_name": "jobqueue"},
        },
    )
