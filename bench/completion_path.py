#!/usr/bin/env python3
"""Time the completion path of jobs that have no dependants, through the in-process store.

``python bench/completion_path.py [N] [ROUNDS]``: for SQLite (a temp file) and PostgreSQL (a
fresh database on PG_ADMIN_URL, dropped afterwards) insert N jobs, claim them, then time the
N completions submitted together (the worker's case under load: they share group commits)
and 200 one at a time (the idle case: each its own commit). Prints the median of ROUNDS rounds
in microseconds per completion, wall-clock and this process's CPU time. Used for the workflows
change (docs/workflows.md): a job with no dependants must pay nothing measurable at completion.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

import asyncpg

from jobqueue.domain.attempts import attempt_of
from jobqueue.domain.jobs import Job, JobStatus, utcnow
from jobqueue.domain.outcome import Succeeded
from jobqueue.store.base import JobStore
from jobqueue.store.factory import open_store
from jobqueue.store.migrate import migrate_async

PG_ADMIN_URL = os.environ.get("PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def new_job() -> Job:
    now = utcnow()
    return Job(uuid.uuid4(), "noop", {"n": 1}, JobStatus.PENDING, 0, 5, None, now, now)


async def claimed(store: JobStore, count: int) -> list[Job]:
    await store.insert([new_job() for _ in range(count)])
    jobs: list[Job] = []
    while len(jobs) < count:
        jobs += await store.claim("bench", 500, utcnow() + timedelta(minutes=5))
    return jobs


async def complete(store: JobStore, job: Job) -> None:
    attempt = attempt_of(job, Succeeded({"ok": True}), utcnow())
    assert await store.complete(job, attempt, {"ok": True}) is not None


async def together(store: JobStore, jobs: list[Job]) -> None:
    await asyncio.gather(*(complete(store, job) for job in jobs))


async def one_by_one(store: JobStore, jobs: list[Job]) -> None:
    for job in jobs:
        await complete(store, job)


Way = Callable[[JobStore, list[Job]], Awaitable[None]]


async def measure(store: JobStore, way: Way, count: int, rounds: int) -> tuple[float, float]:
    """Median microseconds per completion over ``rounds`` rounds: wall-clock time, and this
    process's CPU time (less disturbed by other processes on a shared machine)."""
    wall, cpu = [], []
    for _ in range(rounds):
        jobs = await claimed(store, count)
        began, began_cpu = time.perf_counter(), time.process_time()
        await way(store, jobs)
        wall.append((time.perf_counter() - began) / count * 1e6)
        cpu.append((time.process_time() - began_cpu) / count * 1e6)
    return statistics.median(wall), statistics.median(cpu)


async def bench(name: str, url: str, count: int, rounds: int) -> None:
    await migrate_async(url)
    store = open_store(url)
    try:
        await claimed(store, 100)  # warm up: connections, prepared statements
        # One by one, each completion is its own commit: fewer suffice.
        for label, way, n in (("together", together, count), ("one by one", one_by_one, 200)):
            wall, cpu = await measure(store, way, n, rounds)
            print(
                f"{name:8} {label:10} {wall:8.1f} us wall {cpu:7.1f} us cpu per completion (N={n})"
            )
    finally:
        await store.close()


async def main(count: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        await bench("sqlite", f"sqlite:///{tmp}/bench.db", count, rounds)
    admin = await asyncpg.connect(PG_ADMIN_URL)
    name = f"jobqueue_bench_{uuid.uuid4().hex[:8]}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        await bench("postgres", PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}", count, rounds)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    arguments = [int(value) for value in sys.argv[1:3]]
    asyncio.run(main(*(arguments + [2000, 7][len(arguments) :])))
