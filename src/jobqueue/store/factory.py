"""Pick the store that DATABASE_URL names."""

from __future__ import annotations

from jobqueue.store.base import JobStore
from jobqueue.store.postgres import PostgresJobStore
from jobqueue.store.sqlite import SqliteJobStore

_SQLITE_SCHEMES = ("sqlite", "sqlite+pysqlite", "sqlite+aiosqlite")
_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg")


def sqlite_path(database_url: str) -> str:
    """The file of ``sqlite:///relative.db`` or ``sqlite:////absolute.db``."""
    _scheme, _, rest = database_url.partition("://")
    path = rest.removeprefix("/").split("?")[0]
    if not path or path == ":memory:":
        raise ValueError(
            "DATABASE_URL must name a SQLite file, e.g. sqlite:///./jobqueue.db "
            "(an in-memory database is not shared between the API and the migrations)"
        )
    return path


def open_store(database_url: str, *, timeout_s: float = 5.0, pool_size: int = 10) -> JobStore:
    """The store for ``database_url``; connections open on first use."""
    scheme = database_url.partition("://")[0].lower()
    if scheme in _SQLITE_SCHEMES:
        return SqliteJobStore(sqlite_path(database_url), timeout_s=timeout_s)
    if scheme in _POSTGRES_SCHEMES:
        return PostgresJobStore(database_url, timeout_s=timeout_s, pool_size=pool_size)
    raise ValueError(
        f"DATABASE_URL must start with sqlite:// or postgresql:// (got {scheme or 'nothing'}://)"
    )
