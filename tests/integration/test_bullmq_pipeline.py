"""BullMQ moves of several jobs share one pipeline on a real Redis, each still its own move."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from bullmq import Job, Queue, Worker

from jobqueue.queue.bullmq_pipeline import MoveError, PipelinedMoves, add_jobs

QUEUE = "pipeline-test"
LOCK_MS = 30_000


class CountedMoves(PipelinedMoves):
    """Records the size of every pipeline it sends."""

    def __init__(self, backend: Any) -> None:
        super().__init__(backend)
        self.activations: list[int] = []
        self.completions: list[int] = []

    async def _activate(self, calls: Sequence[tuple[int, str, dict[str, Any]]]) -> dict[int, Any]:
        self.activations.append(len(calls))
        return await super()._activate(calls)

    async def _complete(
        self, calls: Sequence[tuple[int, Any, Any, Any, str, bool]]
    ) -> dict[int, Any]:
        self.completions.append(len(calls))
        return await super()._complete(calls)


@pytest.fixture
async def worker(redis_url: str) -> AsyncIterator[Worker]:
    """A bullmq worker that never runs by itself; the tests drive its backend."""

    async def unused(_job: Any, _token: str | None) -> None:
        raise AssertionError("the tests move jobs by hand")

    queue = Queue(QUEUE, {"connection": redis_url})
    await queue.addBulk([{"name": "t", "data": {"n": n}, "opts": {}} for n in range(3)])
    await queue.close()
    bull = Worker(QUEUE, unused, {"connection": redis_url, "autorun": False})
    yield bull
    await bull.close(force=True)


async def test_concurrent_moves_share_one_pipeline_and_fail_alone(worker: Worker) -> None:
    moves = CountedMoves(worker.backend)
    opts = {"lockDuration": LOCK_MS}
    tokens = ["w:1", "w:2", "w:3"]
    fetched = await asyncio.gather(*(moves.moveToActive(token, opts) for token in tokens))
    assert moves.activations == [3]
    jobs = [Job.fromJSON(worker, data, job_id) for data, job_id, *_ in fetched]
    assert len({job.id for job in jobs}) == 3

    outcomes = await asyncio.gather(
        moves.moveToCompleted(jobs[0], {"ok": 1}, False, tokens[0], fetch_next=False),
        moves.moveToCompleted(jobs[1], {"ok": 2}, False, "not-its-token", fetch_next=False),
        moves.moveToCompleted(jobs[2], {"ok": 3}, False, tokens[2], fetch_next=False),
        return_exceptions=True,
    )
    assert moves.completions == [3]
    assert isinstance(outcomes[1], MoveError)
    states = [await Job.fromId(worker, job.id) for job in jobs]
    assert [await state.getState() for state in states] == ["completed", "active", "completed"]


async def test_a_redis_that_forgot_the_scripts_gets_them_again(worker: Worker) -> None:
    moves = CountedMoves(worker.backend)
    await worker.client.script_flush()  # as after a Redis restart
    fetched = await asyncio.gather(
        *(moves.moveToActive(token, {"lockDuration": LOCK_MS}) for token in ("a", "b"))
    )
    jobs = [Job.fromJSON(worker, data, job_id) for data, job_id, *_ in fetched]
    assert len({job.id for job in jobs}) == 2
    await worker.client.script_flush()
    done = await moves.moveToCompleted(jobs[0], None, False, "a", fetch_next=False)
    assert done["finishedOn"] > 0
    assert await (await Job.fromId(worker, jobs[0].id)).getState() == "completed"


async def test_each_batch_of_activations_reports_how_many_found_a_job(worker: Worker) -> None:
    heard: list[tuple[int, int]] = []
    moves = PipelinedMoves(worker.backend, on_activations=lambda *seen: heard.append(seen))
    opts = {"lockDuration": LOCK_MS}
    await asyncio.gather(*(moves.moveToActive(f"w:{n}", opts) for n in range(5)))
    assert heard == [(5, 3)]  # the queue held three jobs


@pytest.mark.parametrize("delay", [0, 60_000])
async def test_added_jobs_are_stored_as_addbulk_stores_them(redis_url: str, delay: int) -> None:
    queue = Queue("pipeline-add-test", {"connection": redis_url})
    await queue.obliterate(force=True)
    opts: dict[str, Any] = {
        "attempts": 5,
        "backoff": {"type": "exponential", "delay": 2000},
        "delay": delay,
        "priority": 1_000_001,
        "removeOnComplete": {"count": 1000},
        "removeOnFail": {"count": 10000},
    }
    data = {"jobId": "x", "type": "t", "payload": {"to": "ü@example.com", "n": [1, 2.5, None]}}
    try:
        await queue.addBulk([{"name": "t", "data": data, "opts": {**opts, "jobId": "by-bullmq"}}])
        await add_jobs(queue.scripts, [("t", data, {**opts, "jobId": "by-pipeline"})])
        theirs = await queue.client.hgetall(queue.toKey("by-bullmq"))
        ours = await queue.client.hgetall(queue.toKey("by-pipeline"))
        for stored in (theirs, ours):
            stored.pop("timestamp")
            stored["data"] = json.loads(stored["data"])
            stored["opts"] = json.loads(stored["opts"])
            stored["opts"].pop("jobId")
        assert ours == theirs
        assert await queue.getJobState("by-pipeline") == ("delayed" if delay else "prioritized")
    finally:
        await queue.obliterate(force=True)
        await queue.close()


async def test_a_batch_is_added_whole_in_order_after_a_script_flush(redis_url: str) -> None:
    queue = Queue("pipeline-batch-test", {"connection": redis_url})
    entries = [
        ("t", {"n": n}, {"jobId": f"job-{n}", "delay": 60_000 if n % 3 == 0 else 0})
        for n in range(600)
    ]
    try:
        await queue.client.script_flush()  # as after a Redis restart
        await add_jobs(queue.scripts, entries)
        await add_jobs(queue.scripts, entries[:10])  # ids BullMQ holds: ignored, as by addBulk
        counts = await queue.getJobCounts("wait", "delayed")
        assert counts == {"wait": 400, "delayed": 200}
        waiting = {job.id for job in await queue.getWaiting(0, -1)}
        assert waiting == {f"job-{n}" for n in range(600) if n % 3}
        assert (await Job.fromId(queue, "job-599")).data == {"n": 599}
    finally:
        await queue.obliterate(force=True)
        await queue.close()
