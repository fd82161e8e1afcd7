"""PostgreSQL only: a job created by one process wakes an idle worker in another at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.conftest import make_settings, running_service
from tests.services import fresh_postgres_database

POLL_MS = 60_000  # far longer than the test's deadline: only a notification can wake it


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A fresh, migrated PostgreSQL database."""
    from jobqueue.store.migrate import migrate_async

    async with fresh_postgres_database() as url:
        await migrate_async(url)
        yield url


async def test_an_idle_worker_elsewhere_starts_a_new_job_without_polling(
    pg_url: str, tmp_path: Path
) -> None:
    worker_settings = make_settings(pg_url, tmp_path, job_poll_interval_ms=POLL_MS)
    api_settings = make_settings(pg_url, tmp_path)
    async with (
        running_service(worker_settings) as worker_side,
        running_service(api_settings, worker=False) as api_side,
    ):
        # The first job may be found by the worker's start-up claim; the second, created
        # while the worker sleeps out its 60 s poll, only by a notification.
        first = await api_side.create("flaky")
        await worker_side.wait_for(first["id"], "completed", timeout=5)
        second = await api_side.create("flaky")
        done = await worker_side.wait_for(second["id"], "completed", timeout=5)
    assert done["attempts"] == 1
