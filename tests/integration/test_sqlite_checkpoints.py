"""SQLite: WAL checkpoints run off the event loop and keep the WAL bounded."""

from __future__ import annotations

import os
from pathlib import Path
from uuid import uuid4

import pytest

from jobqueue.domain.jobs import utcnow
from jobqueue.store import sqlite as sqlite_store
from jobqueue.store.migrate import migrate_async
from jobqueue.store.sqlite import SqliteJobStore
from tests.unit.factories import make_job


@pytest.fixture
async def store(tmp_path: Path) -> SqliteJobStore:
    path = tmp_path / "jobs.db"
    await migrate_async(f"sqlite:///{path}")
    return SqliteJobStore(str(path))


async def write_jobs(store: SqliteJobStore, count: int) -> None:
    """``count`` transactions of one job each (each appends its pages to the WAL)."""
    for _ in range(count):
        now = utcnow()
        await store.insert([make_job(id=uuid4(), created_at=now, updated_at=now)])


def wal_size(store: SqliteJobStore) -> int:
    return os.path.getsize(f"{store.path}-wal")


async def test_the_event_loop_connection_never_checkpoints_by_itself(
    store: SqliteJobStore,
) -> None:
    await write_jobs(store, 1000)
    assert wal_size(store) > 4096 * 1000  # past SQLite's automatic 1,000-page checkpoint
    await store.close()


async def test_a_large_wal_is_restarted_and_truncated(
    store: SqliteJobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await write_jobs(store, 50)
    grown = wal_size(store)
    sqlite_store._checkpoint(store.path, 5.0)  # below the limit: copied back, file kept
    assert wal_size(store) == grown
    monkeypatch.setattr(sqlite_store, "WAL_LIMIT_BYTES", grown - 1)
    sqlite_store._checkpoint(store.path, 5.0)
    assert wal_size(store) == 0
    await write_jobs(store, 10)  # the WAL starts over from its beginning
    assert 0 < wal_size(store) < grown
    assert sum((await store.count_by_status()).values()) == 60
    await store.close()
