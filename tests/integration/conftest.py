"""The behaviour suite's fixtures: one in-process service per mode, driven over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobqueue.api.app import create_app
from jobqueue.config import Settings
from jobqueue.runtime import Runtime
from jobqueue.store.migrate import migrate_async
from jobqueue.worker.runner import Worker
from tests.services import fresh_postgres_database

MODES = ["sqlite", "postgres"]
FAST = {"job_backoff_ms": 50, "job_poll_interval_ms": 50, "shutdown_grace_ms": 2000}


@dataclass
class Service:
    """A running service: its runtime, HTTP client and worker."""

    runtime: Runtime
    client: httpx.AsyncClient
    worker: Worker | None

    async def wait_for(self, job_id: str, *statuses: str, timeout: float = 10) -> dict[str, Any]:
        """Poll the job until it reaches one of ``statuses``; fail with its last state."""
        job: dict[str, Any] = {}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            job = (await self.client.get(f"/api/jobs/{job_id}")).json()
            if job.get("status") in statuses:
                return job
            await asyncio.sleep(0.02)
        pytest.fail(f"job {job_id} not {statuses} within {timeout}s; last seen: {job}")

    async def create(
        self, job_type: str, payload: dict[str, Any] | None = None, **extra: Any
    ) -> dict[str, Any]:
        """POST a job and return its body, asserting 201."""
        response = await self.client.post(
            "/api/jobs", json={"type": job_type, "payload": payload or {}, **extra}
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    """Each behaviour test runs once per mode."""
    return str(request.param)


@pytest.fixture
async def database_url(mode: str, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, migrated database of the mode's kind."""
    async with AsyncExitStack() as stack:
        if mode == "sqlite":
            url = f"sqlite:///{tmp_path / 'jobs.db'}"
        else:
            url = await stack.enter_async_context(fresh_postgres_database())
        await migrate_async(url)
        yield url


def make_settings(database_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for a test service: fast retries, the test handlers, no .env file."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "outbox_dir": str(tmp_path / "outbox"),
        "jobqueue_handlers": ["tests.integration.behaviour_handlers"],
        "redis_url": None,
        "redis_host": None,
        **FAST,
        **overrides,
    }
    return Settings(_env_file=None, **values)


@asynccontextmanager
async def running_service(settings: Settings, *, worker: bool = True) -> AsyncIterator[Service]:
    """The API in process (over ASGI) and, unless told otherwise, a worker task."""
    runtime = Runtime.build(settings)
    app = create_app(runtime.service, settings)
    transport = httpx.ASGITransport(app=app)
    job_worker = runtime.worker() if worker else None
    task = asyncio.create_task(job_worker.run()) if job_worker else None
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield Service(runtime, client, job_worker)
    finally:
        if job_worker and task:
            job_worker.stop()
            await asyncio.wait_for(task, 10)
        await runtime.close()


@pytest.fixture
async def service(database_url: str, tmp_path: Path) -> AsyncIterator[Service]:
    """A service with a worker, in the test's mode."""
    async with running_service(make_settings(database_url, tmp_path)) as running:
        yield running
