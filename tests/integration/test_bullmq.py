"""The Redis mode on a real Redis: what goes on `job-queue` and `job-dlq`, and each BullMQ
pitfall listed in DESIGN.md, with a test that would catch it."""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from typing import Any

import pytest
import structlog

from jobqueue.domain.jobs import JobStatus
from jobqueue.queue.bullmq import BullMQBroker
from jobqueue.queue.bullmq_consumer import BullMQConsumer
from jobqueue.queue.bullmq_wire import PRIORITY_OFFSET
from tests.integration import behaviour_handlers as handlers
from tests.integration.conftest import RedisMode, Service, running_service

DLQ_KEYS = {"jobId", "type", "payload", "reason", "attempts", "failedAt"}


def broker_of(svc: Service) -> BullMQBroker:
    """The service's BullMQ broker."""
    broker = svc.runtime.broker
    assert isinstance(broker, BullMQBroker)
    return broker


def consumer_of(svc: Service) -> BullMQConsumer:
    """The service's BullMQ consumer."""
    assert svc.worker is not None
    consumer = svc.worker.consumer
    assert isinstance(consumer, BullMQConsumer)
    return consumer


async def bull_job(svc: Service, job_id: str) -> Any:
    """The BullMQ job stored for ``job_id``, or None."""
    return await broker_of(svc).queue.getJob(job_id)


async def wait_for_state(svc: Service, job_id: str, state: str, timeout: float = 5) -> None:
    """Poll BullMQ until the job is in ``state``."""
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        seen = await broker_of(svc).queue.getJobState(job_id)
        if seen == state:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"BullMQ job {job_id} not {state} within {timeout}s (last: {seen})")


async def wait_for_dlq(svc: Service, count: int, timeout: float = 5) -> list[Any]:
    """Poll `job-dlq` until it holds ``count`` entries (the row shows failed first)."""
    entries: list[Any] = []
    for _ in range(int(timeout / 0.02) + 1):
        entries = await broker_of(svc).dlq.getJobs(["waiting"])
        if len(entries) >= count:
            return entries
        await asyncio.sleep(0.02)
    raise AssertionError(f"job-dlq holds {len(entries)} entries, not {count}, after {timeout}s")


async def wait_until_nothing_can_run(svc: Service, timeout: float = 5) -> None:
    """Poll until BullMQ holds no job that could still run: no further run can happen."""
    counts: dict[str, int] = {}
    for _ in range(int(timeout / 0.02) + 1):
        counts = await broker_of(svc).queue.getJobCounts(
            "waiting", "prioritized", "delayed", "active"
        )
        if not any(counts.values()):
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"BullMQ still holds runnable jobs after {timeout}s: {counts}")


async def test_a_job_goes_on_job_queue_as_the_node_service_put_it(redis_mode: RedisMode) -> None:
    async with running_service(redis_mode.settings(), worker=False) as svc:
        job = await svc.create("flaky", {"n": 1}, priority=-5, maxAttempts=4, delayMs=60_000)
        stored = await bull_job(svc, job["id"])
        state = await broker_of(svc).queue.getJobState(job["id"])
    assert (stored.id, stored.name, state) == (job["id"], "flaky", "delayed")
    assert stored.data == {"jobId": job["id"], "type": "flaky", "payload": {"n": 1}}
    assert stored.opts["attempts"] == 4
    assert stored.opts["backoff"] == {"type": "exponential", "delay": 50}
    assert 59_000 < stored.opts["delay"] <= 60_000
    assert stored.opts["priority"] == PRIORITY_OFFSET - 5


@pytest.mark.parametrize("backoff_ms", [2000, 1500])
async def test_a_2s_backoff_waits_about_2s_not_3(redis_mode: RedisMode, backoff_ms: int) -> None:
    """Pitfall 1: before its blocking connection read the Redis version, a worker rounds
    delays up to whole seconds (1.5 s becomes 2 s); BullMQ's backoff must also equal our
    RetryPolicy's."""
    async with running_service(redis_mode.settings(job_backoff_ms=backoff_ms)) as svc:
        job = await svc.create("flaky", {"failures": 1})
        done = await svc.wait_for(job["id"], "completed", timeout=6)
        version = consumer_of(svc).worker.blockingRedisConnection.version
    first, second = handlers.started_at[uuid.UUID(job["id"])]
    expected = backoff_ms / 1000
    assert expected - 0.05 <= second - first < expected + 0.4, second - first
    assert done["attempts"] == 2
    assert version is not None


async def test_attempt_numbers_follow_attempts_made(redis_mode: RedisMode) -> None:
    """Pitfall 4: attemptsMade counts earlier failures; the handler sees attemptsMade + 1."""
    async with running_service(redis_mode.settings()) as svc:
        job = await svc.create("flaky", {"failures": 2})
        done = await svc.wait_for(job["id"], "completed")
        await wait_for_state(svc, job["id"], "completed")
        stored = await bull_job(svc, job["id"])
    assert handlers.calls[uuid.UUID(job["id"])] == [1, 2, 3]
    assert (done["attempts"], stored.attemptsMade) == (3, 3)


async def test_a_permanent_error_makes_no_further_bullmq_attempt(redis_mode: RedisMode) -> None:
    """Pitfall 4: UnrecoverableError fails the BullMQ job at once, with attempts left."""
    async with running_service(redis_mode.settings()) as svc:
        job = await svc.create("permanent")
        await svc.wait_for(job["id"], "failed")
        await wait_for_state(svc, job["id"], "failed")
        stored = await bull_job(svc, job["id"])
    assert (stored.attemptsMade, stored.opts["attempts"]) == (1, 5)
    assert stored.failedReason == "this can never work"


async def test_exhausted_attempts_agree_with_bullmq(redis_mode: RedisMode) -> None:
    async with running_service(redis_mode.settings()) as svc:
        job = await svc.create("flaky", {"failures": 99}, maxAttempts=2)
        failed = await svc.wait_for(job["id"], "failed")
        await wait_for_state(svc, job["id"], "failed")
        stored = await bull_job(svc, job["id"])
    assert failed["attempts"] == stored.attemptsMade == 2
    assert handlers.calls[uuid.UUID(job["id"])] == [1, 2]


async def test_the_dlq_entry_on_job_dlq_has_exactly_the_node_keys(redis_mode: RedisMode) -> None:
    async with running_service(redis_mode.settings()) as svc:
        job = await svc.create("permanent", {"to": "x"})
        await svc.wait_for(job["id"], "failed")
        entries = await wait_for_dlq(svc, 1)
        api_entry = (await svc.client.get("/api/dlq")).json()[0]
    assert len(entries) == 1
    data = entries[0].data
    assert set(data) == DLQ_KEYS
    assert data == api_entry
    assert (data["jobId"], data["type"], data["payload"]) == (job["id"], "permanent", {"to": "x"})
    assert (data["reason"], data["attempts"]) == ("this can never work", 1)


async def test_concurrent_retries_of_a_failed_job_enqueue_it_once(redis_mode: RedisMode) -> None:
    """Pitfall 3: the failed BullMQ job would swallow a re-add with the same jobId."""
    async with running_service(redis_mode.settings()) as svc:
        job = await svc.create("permanent-then-gated")
        job_id = uuid.UUID(job["id"])
        await svc.wait_for(job["id"], "failed")
        await wait_for_state(svc, job["id"], "failed")
        retries = await asyncio.gather(
            *(svc.client.post(f"/api/jobs/{job['id']}/retry") for _ in range(5))
        )
        # The rerun waits at its gate: it cannot fail again and let a late retry pass.
        assert sorted(r.status_code for r in retries) == [200, 400, 400, 400, 400]
        await asyncio.wait_for(handlers.started[job_id].wait(), 10)
        handlers.gates[job_id].set()
        await svc.wait_for(job["id"], "completed")
        await wait_until_nothing_can_run(svc)  # a second trigger would still be queued
    assert handlers.calls[job_id] == [1, 1]


async def test_event_handlers_are_plain_functions_and_run(redis_mode: RedisMode) -> None:
    """Pitfall 2: bullmq calls handlers without awaiting them: an async one never runs."""
    async with running_service(redis_mode.settings()) as svc:
        job = await svc.create("flaky")
        await svc.wait_for(job["id"], "completed")
        worker = consumer_of(svc).worker
        callbacks = [fn for listeners in worker._callbacks.values() for fn in listeners]
        with structlog.testing.capture_logs() as logs:
            worker.emit("error", RuntimeError("boom"))
    assert {"error", "stalled", "failed"} <= set(worker._callbacks)
    assert not any(inspect.iscoroutinefunction(fn) for fn in callbacks)
    assert any(entry["event"] == "BullMQ worker error" for entry in logs)


async def test_delete_removes_the_bullmq_job(redis_mode: RedisMode) -> None:
    async with running_service(redis_mode.settings()) as svc:
        job = await svc.create("flaky", runAt="2999-01-01T00:00:00Z")
        assert await bull_job(svc, job["id"]) is not None
        assert (await svc.client.delete(f"/api/jobs/{job['id']}")).status_code == 204
        assert await bull_job(svc, job["id"]) is None


async def test_a_trigger_for_a_missing_row_is_dropped(redis_mode: RedisMode) -> None:
    """Fault 1 of the Node service: it crashed on such a trigger, at every restart."""
    async with running_service(redis_mode.settings(), worker=False) as api:
        orphan = await api.create("flaky")
        assert await api.runtime.store.delete(uuid.UUID(orphan["id"])) is not None
    async with running_service(redis_mode.settings()) as svc:
        await wait_for_state(svc, orphan["id"], "completed")
        job = await svc.create("flaky")
        assert (await svc.wait_for(job["id"], "completed"))["attempts"] == 1
    assert handlers.calls[uuid.UUID(orphan["id"])] == []


async def test_stop_hands_a_running_job_back_without_spending_an_attempt(
    redis_mode: RedisMode,
) -> None:
    async with running_service(redis_mode.settings(shutdown_grace_ms=100)) as svc:
        job = await svc.create("blocker")
        job_id = uuid.UUID(job["id"])
        await handlers.started[job_id].wait()
    async with running_service(redis_mode.settings(), worker=False) as api:
        row = await api.runtime.store.get(job_id)
        stored = await bull_job(api, job["id"])
        state = await broker_of(api).queue.getJobState(job["id"])
    assert row is not None
    assert (row.status, row.attempts) == (JobStatus.PENDING, 0)
    assert (state, stored.attemptsMade) == ("delayed", 0)
    handlers.gates[job_id].set()
    async with running_service(redis_mode.settings()) as svc:
        assert (await svc.wait_for(job["id"], "completed"))["attempts"] == 1
    assert handlers.calls[job_id] == [1, 1]


async def test_a_killed_workers_job_runs_again_after_its_lock_expires(
    redis_mode: RedisMode,
) -> None:
    """Pitfall 5: BullMQ's stalled-job check re-runs it; the lost attempt is counted."""
    settings = redis_mode.settings(job_lease_ms=1000)
    async with running_service(settings) as dying:
        job = await dying.create("blocker")
        job_id = uuid.UUID(job["id"])
        await handlers.started[job_id].wait()
        # A kill: the worker goes away without handing anything back.
        await consumer_of(dying).worker.close(force=True)
    handlers.gates[job_id].set()
    async with running_service(settings) as svc:
        done = await svc.wait_for(job["id"], "completed", timeout=8)
    assert done["attempts"] == 2
    assert done["lastError"].startswith("lease expired")
