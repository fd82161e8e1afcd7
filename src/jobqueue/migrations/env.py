"""Alembic environment: runs the migrations on DATABASE_URL through SQLAlchemy.

SQLAlchemy serves only the migrations; the store runs its SQL on the drivers themselves.
"""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from jobqueue.store.factory import sqlite_path
from jobqueue.store.postgres import plain_dsn
from jobqueue.store.tables import metadata

# Any constant works; every jobqueue process takes the same one before migrating.
_MIGRATION_LOCK_ID = 7_201_946_113


def _run(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_sqlite(database_url: str) -> None:
    engine = sa.create_engine(f"sqlite:///{sqlite_path(database_url)}")
    try:
        with engine.connect() as connection:
            _run(connection)
            connection.commit()
    finally:
        engine.dispose()


async def _run_postgres(database_url: str) -> None:
    url = plain_dsn(database_url).replace("postgresql://", "postgresql+asyncpg://", 1)
    engine = create_async_engine(url.replace("postgres://", "postgresql+asyncpg://", 1))
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


def _run_online() -> None:
    database_url = context.config.get_main_option("database_url")
    assert database_url, "migrate() sets database_url"
    if database_url.partition("://")[0].lower().startswith("sqlite"):
        _run_sqlite(database_url)
    else:
        asyncio.run(_run_postgres(database_url))


_run_online()
