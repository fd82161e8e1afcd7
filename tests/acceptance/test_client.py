"""``jobqueue.client`` against a real ``jobqueue serve`` in each of the three modes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import httpx
import pytest

from jobqueue.client import (
    AsyncClient,
    AuthError,
    BadRequestError,
    Client,
    ConflictError,
    ConnectError,
    JobSpec,
    JobStatus,
    NotFoundError,
)
from tests.support.client_server import (
    API_KEY,
    MODES,
    NEVER_CRON,
    serve_in_mode,
    wait_for_status,
)
from tests.support.serve import ServeProcess, free_port

LATER = timedelta(hours=1)
"""A delay that keeps a job pending for the whole test."""


@pytest.fixture(scope="module", params=MODES)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServeProcess]:
    """One server per mode for every test of this module; each test uses jobs of its own."""
    mode: str = request.param
    with serve_in_mode(mode, tmp_path_factory.mktemp(mode)) as process:
        yield process


@pytest.fixture
def client(server: ServeProcess) -> Iterator[Client]:
    with Client(server.base_url, api_key=API_KEY) as jobs:
        yield jobs


def test_a_created_job_runs_and_its_result_and_attempts_read_back(client: Client) -> None:
    payload = {"marker": str(uuid4()), "n": [1, 2.5, None]}
    created = client.create("client-echo", payload)
    assert (created.type, created.payload, created.status) == ("client-echo", payload, "pending")
    done = wait_for_status(client, created.id, JobStatus.COMPLETED)
    assert (done.result, done.attempts, done.created_at) == (payload, 1, created.created_at)
    (attempt,) = client.attempts(created.id)
    assert (attempt.number, attempt.outcome, attempt.error) == (1, "succeeded", None)
    assert attempt.finished_at >= attempt.started_at


def test_create_options_reach_the_job(client: Client) -> None:
    run_at = datetime.now(UTC) + LATER
    scheduled = client.create("client-later", run_at=run_at, priority=7, max_attempts=2)
    assert scheduled.next_run_at is not None
    assert abs(scheduled.next_run_at - run_at) < timedelta(milliseconds=2)
    assert (scheduled.priority, scheduled.max_attempts) == (7, 2)
    before = datetime.now(UTC)
    delayed = client.create("client-later", delay=LATER)
    assert delayed.next_run_at is not None
    assert before + LATER - timedelta(seconds=1) < delayed.next_run_at < before + LATER * 1.01


def test_update_runs_a_delayed_job_now(client: Client) -> None:
    job = client.create("client-echo", {"x": 1}, delay=LATER)
    updated = client.update(job.id, next_run_at=None)
    assert updated.next_run_at is None
    assert wait_for_status(client, job.id, JobStatus.COMPLETED).result == {"x": 1}


def test_a_batch_is_created_in_order_and_listed_by_type_and_status(client: Client) -> None:
    specs = [JobSpec("client-later", {"i": i}, delay=LATER) for i in range(5)]
    created = client.create_many(specs)
    assert [job.payload for job in created] == [{"i": i} for i in range(5)]
    page = client.list_jobs(status=JobStatus.PENDING, type="client-later", limit=2)
    assert len(page) == 2
    assert all(job.type == "client-later" and job.status == "pending" for job in page)
    assert client.list_jobs(status="completed", type="client-later") == []


def test_iter_jobs_pages_through_more_than_one_page(client: Client) -> None:
    specs = [JobSpec("client-later", {"page": True}, delay=LATER) for _ in range(23)]
    created = {job.id for job in client.create_many(specs)}
    walked = [job.id for job in client.iter_jobs(type="client-later", page_size=7)]
    assert len(walked) == len(set(walked))
    assert created <= set(walked)
    assert len(walked) == len(client.list_jobs(type="client-later", limit=500))
    times = [job.created_at for job in client.iter_jobs(type="client-later", page_size=4)]
    assert times == sorted(times, reverse=True)


def test_stats_count_a_cancel_and_a_delete(client: Client) -> None:
    before = client.stats()
    job = client.create("client-later", delay=LATER)
    assert client.stats().pending == before.pending + 1
    cancelled = client.cancel(job.id)
    assert cancelled.status == "cancelled"
    after = client.stats()
    assert (after.pending, after.cancelled) == (before.pending, before.cancelled + 1)
    assert after.total == sum(after.counts.values()) == before.total + 1
    client.delete(job.id)
    assert client.stats().total == before.total
    with pytest.raises(NotFoundError):
        client.get(job.id)


def test_a_failed_job_is_dead_lettered_and_retried(client: Client) -> None:
    job = client.create("client-fail", {"why": "test"})
    failed = wait_for_status(client, job.id, JobStatus.FAILED)
    assert (failed.attempts, failed.last_error) == (1, "told to fail")
    letters = [e for e in client.iter_dead_letters(page_size=1) if e.job_id == job.id]
    assert [(e.type, e.reason, e.payload) for e in letters] == [
        ("client-fail", "told to fail", {"why": "test"})
    ]
    assert any(e.job_id == job.id for e in client.dead_letters(limit=500))
    retried = client.retry(job.id)
    assert (retried.status, retried.attempts) == ("pending", 0)
    wait_for_status(client, job.id, JobStatus.FAILED)
    assert client.retry_failed(type="client-fail") == 1
    assert wait_for_status(client, job.id, JobStatus.FAILED).attempts == 1
    assert client.retry_failed(type="no-failed-jobs-of-this-type") == 0


def test_schedules_are_listed(client: Client) -> None:
    (schedule,) = client.schedules()
    assert (schedule.type, schedule.cron, schedule.payload) == ("client-later", NEVER_CRON, {})
    assert (schedule.next_run_at.month, schedule.next_run_at.day) == (1, 1)


def test_errors_carry_the_status_and_the_servers_message(client: Client) -> None:
    with pytest.raises(NotFoundError) as missing:
        client.get(uuid4())
    assert (missing.value.status, missing.value.message) == (404, "Job not found")
    with pytest.raises(BadRequestError) as not_an_id:
        client.get("not-a-uuid")
    assert not_an_id.value.status == 400
    assert "id" in not_an_id.value.message
    with pytest.raises(BadRequestError, match="client-echo"):  # the known types are listed
        client.create("no-such-type")
    job = client.create("client-later", delay=LATER)
    with pytest.raises(BadRequestError, match="Only failed jobs can be retried"):
        client.retry(job.id)
    client.cancel(job.id)
    with pytest.raises(ConflictError) as conflict:
        client.cancel(job.id)
    assert conflict.value.status == 409


def test_a_wrong_or_missing_key_is_an_auth_error(server: ServeProcess) -> None:
    for key in ("wrong-key", None):
        with Client(server.base_url, api_key=key) as jobs, pytest.raises(AuthError) as denied:
            jobs.stats()
        assert denied.value.status == 401


def test_an_idempotency_key_gives_the_first_job_and_refuses_another_request(
    client: Client,
) -> None:
    key = f"order-{uuid4()}"
    first = client.create("client-later", {"n": 1}, delay=LATER, idempotency_key=key)
    again = client.create("client-later", {"n": 1}, delay=LATER, idempotency_key=key)
    assert again.id == first.id
    with pytest.raises(ConflictError) as conflict:
        client.create("client-later", {"n": 2}, delay=LATER, idempotency_key=key)
    assert conflict.value.status == 409
    assert key in conflict.value.message


class LoseFirstAnswer(httpx.BaseTransport):
    """Sends every request; the first answer is dropped as if the connection broke."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = self.inner.handle_request(request)
        if len(self.requests) == 1:
            response.read()
            response.close()
            raise httpx.ReadError("connection reset after the request was sent", request=request)
        return response

    def close(self) -> None:
        self.inner.close()


def lossy_client(server: ServeProcess) -> tuple[Client, LoseFirstAnswer]:
    transport = LoseFirstAnswer()
    client = Client(server.base_url, api_key=API_KEY, backoff=0.01, transport=transport)
    return client, transport


def jobs_marked(client: Client, marker: str) -> list[UUID]:
    return [j.id for j in client.iter_jobs(type="client-later") if j.payload.get("m") == marker]


def test_a_create_whose_answer_is_lost_is_sent_again_and_makes_one_job(
    server: ServeProcess, client: Client
) -> None:
    marker = str(uuid4())
    lossy, transport = lossy_client(server)
    with lossy:
        job = lossy.create("client-later", {"m": marker}, delay=LATER)
    assert len(transport.requests) == 2
    keys = {request.headers["Idempotency-Key"] for request in transport.requests}
    assert len(keys) == 1
    assert jobs_marked(client, marker) == [job.id]


def test_a_batch_whose_answer_is_lost_is_sent_again_and_makes_each_job_once(
    server: ServeProcess, client: Client
) -> None:
    marker = str(uuid4())
    lossy, transport = lossy_client(server)
    with lossy:
        jobs = lossy.create_many([JobSpec("client-later", {"m": marker}, delay=LATER)] * 3)
    assert len(transport.requests) == 2
    assert sorted(jobs_marked(client, marker)) == sorted(job.id for job in jobs)
    assert len({job.id for job in jobs}) == 3


def test_a_server_that_is_down_is_a_connect_error_after_the_retries(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with Client(url, retries=2, backoff=0.01) as jobs, pytest.raises(ConnectError) as down:
        jobs.stats()
    assert down.value.url == url
    assert down.value.message.startswith(f"cannot reach jobqueue at {url}: ")
    assert down.value.status is None


async def test_the_async_client_creates_reads_and_pages(server: ServeProcess) -> None:
    async with AsyncClient(server.base_url, api_key=API_KEY) as jobs:
        created = await jobs.create_many([JobSpec("client-later", delay=LATER)] * 3)
        job = await jobs.get(created[0].id)
        walked = {j.id async for j in jobs.iter_jobs(type="client-later", page_size=2)}
    assert job == created[0]
    assert {j.id for j in created} <= walked
