"""The behaviour suite's fixtures: one in-process service per mode, driven over HTTP."""

from __future__ import annotations

import asyncio
import itertools
import random
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from jobqueue.api.app import create_app
from jobqueue.config import Settings
from jobqueue.runtime import Runtime
from jobqueue.store.migrate import migrate_async
from jobqueue.worker.runner import Worker
from tests.services import (
    REDIS_TEST_URL,
    flush_redis,
    fresh_postgres_database,
    port_open,
    private_redis,
    unavailable,
)

MODES = ["sqlite", "postgres", "redis"]
"""sqlite and postgres: the jobs table is the queue; redis: PostgreSQL + BullMQ on Redis."""
FAST = {
    "job_backoff_ms": 50,
    "job_poll_interval_ms": 50,
    "shutdown_grace_ms": 2000,
    "job_cancel_grace_ms": 300,
}
REDIS_FAST = {"reconcile_interval_ms": 300}

_redis_for_database: dict[str, str] = {}
"""A redis-mode database URL -> the fresh Redis database that comes with it."""


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


@dataclass
class RedisDatabases:
    """Hands out Redis databases (by index), each emptied before use."""

    url_of: Callable[[int], str]
    indexes: Iterator[int]

    def fresh(self) -> str:
        """The URL of an emptied database."""
        url = self.url_of(next(self.indexes))
        flush_redis(url)
        return url


@pytest.fixture(scope="session")
def redis_databases() -> Iterator[RedisDatabases]:
    """A private redis-server for the session; without the binary, random databases 1..15
    of the Redis at JOBQUEUE_TEST_REDIS (never database 0, which may be someone's)."""
    if shutil.which("redis-server"):
        with private_redis() as server:
            yield RedisDatabases(server.url, itertools.cycle(range(16)))
        return
    parts = urlsplit(REDIS_TEST_URL)
    if not port_open(parts.hostname or "127.0.0.1", parts.port or 6379):
        unavailable(f"Redis not reachable at {REDIS_TEST_URL}")
    base = REDIS_TEST_URL.rstrip("/")
    indexes = (random.randint(1, 15) for _ in itertools.count())
    yield RedisDatabases(lambda db: f"{base}/{db}", indexes)


@pytest.fixture
def redis_url(redis_databases: RedisDatabases) -> Iterator[str]:
    """A fresh Redis database for one test, emptied again afterwards."""
    url = redis_databases.fresh()
    yield url
    flush_redis(url)


@pytest.fixture
async def database_url(
    mode: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[str]:
    """A fresh, migrated database of the mode's kind (redis: PostgreSQL, plus a fresh Redis
    database that ``make_settings`` picks up for this URL)."""
    async with AsyncExitStack() as stack:
        if mode == "sqlite":
            url = f"sqlite:///{tmp_path / 'jobs.db'}"
        else:
            url = await stack.enter_async_context(fresh_postgres_database())
        await migrate_async(url)
        if mode == "redis":
            _redis_for_database[url] = request.getfixturevalue("redis_url")
            stack.callback(_redis_for_database.pop, url, None)
        yield url


def make_settings(database_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for a test service: fast retries, the test handlers, no .env file.

    A redis-mode database comes with its Redis (see ``database_url``).
    """
    redis_url = _redis_for_database.get(database_url)
    values: dict[str, Any] = {
        "database_url": database_url,
        "outbox_dir": str(tmp_path / "outbox"),
        "jobqueue_handlers": ["tests.integration.behaviour_handlers"],
        "redis_url": redis_url,
        "redis_host": None,
        **FAST,
        **(REDIS_FAST if redis_url else {}),
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


@dataclass
class RedisMode:
    """A fresh PostgreSQL database and Redis database for one Redis-mode test."""

    database_url: str
    redis_url: str
    tmp_path: Path

    def settings(self, **overrides: Any) -> Settings:
        """Test settings in Redis mode (the reconciler runs every 300 ms)."""
        return make_settings(self.database_url, self.tmp_path, **overrides)


@pytest.fixture
async def redis_mode(tmp_path: Path, redis_url: str) -> AsyncIterator[RedisMode]:
    """PostgreSQL + Redis, both fresh, for tests of the Redis mode itself."""
    async with fresh_postgres_database() as url:
        await migrate_async(url)
        _redis_for_database[url] = redis_url
        try:
            yield RedisMode(url, redis_url, tmp_path)
        finally:
            _redis_for_database.pop(url, None)
