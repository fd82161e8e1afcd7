"""The reconciler: pending rows whose BullMQ job is gone are enqueued again (fault 2)."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Iterator

import pytest

from jobqueue.domain.jobs import Job, utcnow
from jobqueue.queue.bullmq import BullMQBroker
from jobqueue.queue.bullmq_reconciler import Reconciler
from tests.integration import behaviour_handlers as handlers
from tests.integration.conftest import RedisMode, Service, running_service
from tests.services import RedisServer, flush_redis, private_redis
from tests.unit.factories import make_job


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis of this test's own, which it may stop and start."""
    with private_redis() as server:
        yield server


def committed_only(count: int = 1) -> list[Job]:
    """Rows as a create leaves them when it crashes between commit and enqueue."""
    now = utcnow()
    return [
        make_job(type="flaky", created_at=now, updated_at=now, max_attempts=5) for _ in range(count)
    ]


def reconciler_of(svc: Service) -> Reconciler:
    """A reconciler over the service's own parts, to run rounds by hand."""
    broker = svc.runtime.broker
    assert isinstance(broker, BullMQBroker)
    return Reconciler(svc.runtime.service, broker, svc.runtime.settings)


async def test_a_crash_between_commit_and_enqueue_is_repaired(redis_mode: RedisMode) -> None:
    async with running_service(redis_mode.settings()) as svc:
        [row] = await svc.runtime.store.insert(committed_only())
        done = await svc.wait_for(str(row.id), "completed", timeout=5)
    assert done["attempts"] == 1
    assert handlers.calls[row.id] == [1]


async def test_a_flushed_redis_is_repaired(redis_mode: RedisMode) -> None:
    async with running_service(redis_mode.settings(), worker=False) as api:
        job = await api.create("flaky")
    flush_redis(redis_mode.redis_url)
    async with running_service(redis_mode.settings()) as svc:
        done = await svc.wait_for(job["id"], "completed", timeout=5)
    assert done["attempts"] == 1


async def test_rounds_are_bounded_and_repairs_idempotent(redis_mode: RedisMode) -> None:
    settings = redis_mode.settings(reconcile_batch=2, reconcile_interval_ms=50)
    async with running_service(settings, worker=False) as svc:
        await svc.runtime.store.insert(committed_only(5))
        await asyncio.sleep(0.1)  # older than one interval: stale
        reconciler = reconciler_of(svc)
        rounds = [await reconciler.reconcile_once() for _ in range(4)]
        # Two reconcilers at once (two worker processes) still leave one job per row.
        flush_redis(redis_mode.redis_url)
        await asyncio.gather(
            reconciler_of(svc).reconcile_once(), reconciler_of(svc).reconcile_once()
        )
        broker = svc.runtime.broker
        assert isinstance(broker, BullMQBroker)
        counts = await broker.queue.getJobCounts()
    assert rounds == [2, 2, 1, 0]  # pages of 2 through 5 rows, then all are queued
    assert sum(counts.values()) == 2


async def test_with_redis_down_a_post_answers_at_once_and_runs_after_restart(
    redis_mode: RedisMode, own_redis: RedisServer
) -> None:
    settings = redis_mode.settings(redis_url=own_redis.url())
    async with running_service(settings) as svc:
        own_redis.stop()
        started = time.monotonic()
        response = await svc.client.post("/api/jobs", json={"type": "flaky"})
        elapsed = time.monotonic() - started
        assert (response.status_code, elapsed < 2) == (201, True), (response.text, elapsed)
        health = await svc.client.get("/health")
        assert health.status_code == 503
        assert "redis" in health.json()["message"]
        own_redis.start()
        done = await svc.wait_for(response.json()["id"], "completed", timeout=10)
        assert (await svc.client.get("/health")).status_code == 200
    assert done["attempts"] == 1
    assert handlers.calls[uuid.UUID(done["id"])] == [1]


async def test_a_hung_redis_cannot_hang_a_request(
    redis_mode: RedisMode, own_redis: RedisServer
) -> None:
    """A Redis that accepts connections but never answers (SIGSTOP): calls are bounded."""
    settings = redis_mode.settings(redis_url=own_redis.url())
    async with running_service(settings) as svc:
        await svc.wait_for((await svc.create("flaky"))["id"], "completed")
        assert own_redis.process is not None
        own_redis.process.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            response = await svc.client.post("/api/jobs", json={"type": "flaky"})
            posted = time.monotonic()
            health = await svc.client.get("/health")
            checked = time.monotonic()
        finally:
            own_redis.process.send_signal(signal.SIGCONT)
        assert (response.status_code, health.status_code) == (201, 503)
        assert "redis" in health.json()["message"]
        assert posted - started < 2, posted - started
        assert checked - posted < 2, checked - posted
        done = await svc.wait_for(response.json()["id"], "completed", timeout=10)
    assert done["attempts"] == 1


async def test_a_dead_letter_written_while_redis_is_down_reaches_job_dlq_after(
    redis_mode: RedisMode, own_redis: RedisServer
) -> None:
    settings = redis_mode.settings(redis_url=own_redis.url())
    async with running_service(settings) as svc:
        job = await svc.create("blocker-then-fail")
        job_id = uuid.UUID(job["id"])
        await asyncio.wait_for(handlers.started[job_id].wait(), 5)
        own_redis.stop()
        handlers.gates[job_id].set()
        failed = await svc.wait_for(job["id"], "failed", timeout=10)
        assert failed["lastError"] == "gave up after the gate"
        dlq = (await svc.client.get("/api/dlq")).json()
        assert [entry["jobId"] for entry in dlq] == [job["id"]]  # the row is the record

        own_redis.start()  # empty: it keeps nothing on disk
        broker = svc.runtime.broker
        assert isinstance(broker, BullMQBroker)
        store = svc.runtime.store
        for _ in range(200):  # the reconciler's next rounds (add, then mark): at most 10 s
            if await broker.dlq.getJobs(["waiting"]) and not await store.queue_pending_dead_letters(
                10
            ):
                break
            await asyncio.sleep(0.05)
        [entry] = await broker.dlq.getJobs(["waiting"])
        assert entry.data["jobId"] == job["id"]
        assert entry.data["reason"] == dlq[0]["reason"]
        assert await store.queue_pending_dead_letters(10) == []  # marked as written
