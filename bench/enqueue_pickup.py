#!/usr/bin/env python3
"""How long after the application's commit a job enqueued with ``jobqueue.enqueue`` is
picked up by an idle worker, in each mode (the numbers in docs/transactional-enqueue.md).

Runs a worker in this process with the default settings (JOB_POLL_INTERVAL_MS 1000,
RECONCILE_INTERVAL_MS 10000) on a fresh database; the application enqueues on a connection of
its own (``sqlite3``; ``asyncpg`` on PostgreSQL), commits, and notes the time. Picked up:
the job's first attempt's start. Redis mode also: the time its BullMQ job appears.

Usage: ``.venv/bin/python bench/enqueue_pickup.py [samples]`` (needs PostgreSQL and Redis at
PG_ADMIN_URL [postgresql://postgres@127.0.0.1:5432/postgres] and BENCH_REDIS_URL
[redis://127.0.0.1:6379/14], a database it flushes).
"""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

import asyncpg
import redis

import jobqueue
from jobqueue.config import Settings
from jobqueue.domain.jobs import utcnow
from jobqueue.runtime import Runtime
from jobqueue.store.migrate import migrate_async

PG_ADMIN = os.environ.get("PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


@asynccontextmanager
async def database(mode: str) -> AsyncIterator[str]:
    """A fresh, migrated database for ``mode``, dropped afterwards."""
    if mode == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/jobs.db"
            await migrate_async(url)
            yield url
        return
    admin = await asyncpg.connect(PG_ADMIN)
    name = f"jobqueue_pickup_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
        await migrate_async(url)
        yield url
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def commit_one(url: str) -> tuple[UUID, float]:
    """Enqueue one job in an application transaction; its id and the commit's wall time."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=10)
        job_id = jobqueue.enqueue(conn, "noop")
        conn.commit()
        committed = time.time()
        conn.close()
        return job_id, committed
    pg = await asyncpg.connect(url)
    async with pg.transaction():
        job_id = await jobqueue.enqueue_async(pg, "noop")
    committed = time.time()
    await pg.close()
    return job_id, committed


def seen_in_bullmq(client: redis.Redis, job_id: UUID, deadline_s: float = 20) -> float:
    """The wall time at which BullMQ's hash of the job appeared (polled every 0.5 ms)."""
    give_up = time.monotonic() + deadline_s
    while time.monotonic() < give_up:
        if client.exists(f"bull:job-queue:{job_id}"):
            return time.time()
        time.sleep(0.0005)
    raise TimeoutError(f"job {job_id} never reached BullMQ")


async def measure(mode: str, samples: int) -> None:
    async with database(mode) as url:
        settings = Settings(
            _env_file=None, database_url=url, redis_url=REDIS_URL if mode == "redis" else None
        )
        client = redis.Redis.from_url(REDIS_URL)
        if mode == "redis":
            client.flushdb()
        runtime = Runtime.build(settings)
        worker = runtime.worker()
        task = asyncio.create_task(worker.run())
        await asyncio.sleep(1.5)  # the worker is listening and idle
        pickups, queued = [], []
        try:
            for _ in range(samples):
                # Idle for a random part of a poll interval: commits fall at random points of it.
                await asyncio.sleep(random.uniform(0.05, 1.05))
                job_id, committed = await commit_one(url)
                if mode == "redis":
                    seen = await asyncio.to_thread(seen_in_bullmq, client, job_id)
                    queued.append(seen - committed)
                while not (history := await runtime.service.attempts(job_id)):  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
                started = history[0].started_at.timestamp()
                pickups.append(started - committed)
        finally:
            worker.stop()
            await task
            await runtime.close()
            client.close()
        report(mode, "commit -> attempt starts", pickups)
        if queued:
            report(mode, "commit -> on BullMQ", queued)


def report(mode: str, what: str, delays: list[float]) -> None:
    ms = sorted(d * 1000 for d in delays)
    p95 = ms[int(len(ms) * 0.95) - 1]
    print(
        f"{mode:8} {what:26} median {statistics.median(ms):7.1f} ms  p95 {p95:7.1f} ms  "
        f"max {ms[-1]:7.1f} ms  ({len(ms)} samples, {utcnow():%Y-%m-%d})"
    )


async def main() -> None:
    samples = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    for mode in ("sqlite", "postgres", "redis"):
        await measure(mode, samples)


if __name__ == "__main__":
    asyncio.run(main())
