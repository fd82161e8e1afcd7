"""Jobs start when they become due, not when a poll happens to come round."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import jobqueue
from tests.integration import behaviour_handlers as handlers
from tests.integration.conftest import make_settings, running_service
from tests.integration.enqueue_support import application_transaction

NO_POLL = {"job_poll_interval_ms": 60_000}  # longer than any deadline below
FLAKY = jobqueue.JobRequest("flaky", {"failures": 0})


async def test_a_new_job_starts_without_waiting_for_a_poll(
    database_url: str, tmp_path: Path
) -> None:
    async with running_service(make_settings(database_url, tmp_path, **NO_POLL)) as svc:
        await svc.wait_for((await svc.create("flaky"))["id"], "completed", timeout=3)
        job = await svc.create("flaky")  # the worker is idle now, in its 60 s wait
        done = await svc.wait_for(job["id"], "completed", timeout=3)
    assert done["attempts"] == 1


async def test_a_retry_starts_at_its_next_run_time(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, job_backoff_ms=600, **NO_POLL)
    async with running_service(settings) as svc:
        job = await svc.create("flaky", {"failures": 1})
        await svc.wait_for(job["id"], "completed", timeout=5)
    first, second = handlers.started_at[UUID(job["id"])]
    assert 0.6 <= second - first < 2.0


async def test_a_job_committed_by_another_connection_wakes_the_idle_worker(
    database_url: str, tmp_path: Path
) -> None:
    """An application's transaction (another connection, maybe another process): NOTIFY on
    PostgreSQL, SQLite's data_version on SQLite; not the poll, 60 s away."""
    settings = make_settings(database_url, tmp_path, **NO_POLL)
    async with running_service(settings) as svc:
        await svc.wait_for((await svc.create("flaky"))["id"], "completed", timeout=3)
        url = svc.runtime.settings.database_url
        (job_id,) = await application_transaction(url, [FLAKY], commit=True)
        done = await svc.wait_for(str(job_id), "completed", timeout=3)
    assert done["attempts"] == 1
