"""``AsyncClient`` against a real ``jobqueue serve`` on SQLite: every method (the other modes
get a smoke test in ``test_client.py``; both clients share their wire code)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from uuid import UUID, uuid4

import httpx
import pytest

from jobqueue.client import (
    AsyncClient,
    AuthError,
    BadRequestError,
    ConflictError,
    ConnectError,
    FlowStatus,
    Job,
    JobSpec,
    JobStatus,
    NotFoundError,
    canvas,
)
from tests.support.client_server import API_KEY, NEVER_CRON, serve_in_mode
from tests.support.serve import free_port

LATER = timedelta(hours=1)


@pytest.fixture
async def jobs(tmp_path: Path) -> AsyncIterator[AsyncClient]:
    with serve_in_mode("sqlite", tmp_path) as server:
        async with AsyncClient(server.base_url, api_key=API_KEY) as client:
            yield client


async def wait_for(jobs: AsyncClient, job_id: UUID, status: JobStatus) -> Job:
    """Poll until the job has ``status`` (at most 15 s)."""
    deadline = time.monotonic() + 15
    while (job := await jobs.get(job_id)).status != status:
        assert time.monotonic() < deadline, f"job {job_id} is still {job.status}, not {status}"
        await asyncio.sleep(0.05)
    return job


async def test_every_method_of_the_async_client(jobs: AsyncClient) -> None:
    echoed = await jobs.create("client-echo", {"a": 1})
    assert (await wait_for(jobs, echoed.id, JobStatus.COMPLETED)).result == {"a": 1}
    assert [a.outcome for a in await jobs.attempts(echoed.id)] == ["succeeded"]
    batch = await jobs.create_many(
        [JobSpec("client-later", {"i": i}, delay=LATER) for i in range(9)]
    )
    listed = await jobs.list_jobs(status="pending", type="client-later", limit=5, offset=5)
    assert len(listed) == 4
    walked = [job.id async for job in jobs.iter_jobs(type="client-later", page_size=4)]
    assert sorted(walked) == sorted(job.id for job in batch)
    assert (await jobs.stats()).pending == 9
    assert (await jobs.update(batch[0].id, attempts=1)).attempts == 1
    assert (await jobs.cancel(batch[1].id)).status == "cancelled"
    await jobs.delete(batch[2].id)
    with pytest.raises(NotFoundError):
        await jobs.get(batch[2].id)
    (schedule,) = await jobs.schedules()
    assert schedule.cron == NEVER_CRON


async def test_flows_with_the_async_client(jobs: AsyncClient) -> None:
    parts = [canvas.job("client-add", {"n": n}) for n in range(5)]
    created = await jobs.create_flow(canvas.chord(parts, canvas.job("client-add")))
    callback = await wait_for(jobs, created.member("5").id, JobStatus.COMPLETED)
    assert callback.result == {"total": 10, "parents": 5}
    assert (await jobs.get_flow(created.id)).status == FlowStatus.COMPLETED
    parent = await jobs.create("client-later", delay=LATER)
    child = await jobs.create("client-add", depends_on=[parent.id], on_parent_failure="continue")
    assert (child.status, child.on_parent_failure) == (JobStatus.WAITING, "continue")
    assert (await jobs.stats()).waiting == 1
    later = canvas.job("client-later", delay=LATER)
    held = await jobs.create_flow(canvas.chain(later, canvas.job("client-add")))
    cancelled = await jobs.cancel_flow(held.id)
    assert cancelled.counts["cancelled"] == 2
    with pytest.raises(NotFoundError, match="Flow not found"):
        await jobs.get_flow(uuid4())


async def test_failures_dead_letters_and_retries_with_the_async_client(jobs: AsyncClient) -> None:
    job = await jobs.create("client-fail")
    await wait_for(jobs, job.id, JobStatus.FAILED)
    assert [e.job_id for e in await jobs.dead_letters()] == [job.id]
    assert [e.reason async for e in jobs.iter_dead_letters(page_size=1)] == ["told to fail"]
    assert (await jobs.retry(job.id)).status == "pending"
    await wait_for(jobs, job.id, JobStatus.FAILED)
    assert await jobs.retry_failed() == 1
    await wait_for(jobs, job.id, JobStatus.FAILED)


async def test_errors_of_the_async_client(jobs: AsyncClient) -> None:
    with pytest.raises(NotFoundError):
        await jobs.get(uuid4())
    with pytest.raises(BadRequestError):
        await jobs.create("no-such-type")
    key = str(uuid4())
    first = await jobs.create("client-later", delay=LATER, idempotency_key=key)
    assert (await jobs.create("client-later", delay=LATER, idempotency_key=key)).id == first.id
    with pytest.raises(ConflictError):
        await jobs.create("client-later", {"other": True}, delay=LATER, idempotency_key=key)
    async with AsyncClient(jobs.url, api_key="wrong") as intruder:
        with pytest.raises(AuthError):
            await intruder.stats()


async def test_the_async_client_reports_a_server_that_is_down() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    async with AsyncClient(url, retries=1, backoff=0.01) as jobs:
        with pytest.raises(ConnectError, match=f"cannot reach jobqueue at {url}"):
            await jobs.stats()


class LoseFirstAnswer(httpx.AsyncBaseTransport):
    """Sends every request; the first answer is dropped as if the connection broke."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.sent = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        response = await self.inner.handle_async_request(request)
        if self.sent == 1:
            await response.aread()
            await response.aclose()
            raise httpx.ReadError("connection reset after the request was sent", request=request)
        return response


async def test_a_lost_create_answer_makes_one_job_with_the_async_client(
    jobs: AsyncClient,
) -> None:
    transport = LoseFirstAnswer()
    async with AsyncClient(jobs.url, api_key=API_KEY, backoff=0.01, transport=transport) as lossy:
        job = await lossy.create("client-later", delay=LATER)
    assert transport.sent == 2
    assert [j.id for j in await jobs.list_jobs(type="client-later")] == [job.id]
