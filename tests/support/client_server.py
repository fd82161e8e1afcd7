"""A ``jobqueue serve`` per mode for the client and operator CLI tests, with an API key."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from uuid import UUID

import pytest

from jobqueue.client import Client, Job, JobStatus
from tests.services import postgres_database, private_redis
from tests.support.serve import ServeProcess, running, wait_until

API_KEY = "client-test-key"
HANDLERS_DIR = Path(__file__).parents[1] / "acceptance" / "handler_modules"
NEVER_CRON = "0 0 1 1 *"
"""A schedule that fires on New Year's Day only: listed, and never due during a test."""
SETTINGS = {
    "API_KEYS": API_KEY,
    "JOBQUEUE_HANDLERS": "client_handlers",
    "PYTHONPATH": str(HANDLERS_DIR),
    "SCHEDULES": f"client-later={NEVER_CRON}",
}
MODES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    pytest.param("redis", id="postgres+redis", marks=[pytest.mark.postgres, pytest.mark.redis]),
]


@contextmanager
def serve_in_mode(mode: str, workdir: Path) -> Iterator[ServeProcess]:
    """``jobqueue serve`` on SQLite, PostgreSQL or PostgreSQL + Redis, with ``SETTINGS``."""
    with ExitStack() as stack:
        settings = dict(SETTINGS)
        if mode != "sqlite":
            settings["DATABASE_URL"] = stack.enter_context(postgres_database())
        if mode == "redis":
            settings["REDIS_URL"] = stack.enter_context(private_redis()).url()
        yield stack.enter_context(running(workdir, settings))


def wait_for_status(
    client: Client, job_id: UUID | str, status: JobStatus, timeout: float = 15
) -> Job:
    """Poll the job through ``client`` until it has ``status``; fail with its last state."""
    last: list[Job] = []

    def reached() -> bool:
        last[:] = [client.get(job_id)]
        return last[0].status == status

    wait_until(reached, timeout, f"job {job_id} to be {status}", state=lambda: last)
    return last[0]
