"""The client's retry rule, paging and settings, with in-memory transports (no network)."""

from __future__ import annotations

import json
from collections.abc import Callable
from uuid import UUID, uuid4

import httpx
import orjson
import pytest

from jobqueue.api.responses import job_json
from jobqueue.client import (
    AsyncClient,
    AuthError,
    Client,
    ConnectError,
    UnavailableError,
    calls,
)
from jobqueue.client.paging import Pager
from jobqueue.client.retrying import RetryPolicy, RetryState
from tests.unit.factories import make_job

Handler = Callable[[httpx.Request], httpx.Response]
UNAVAILABLE = {"statusCode": 503, "error": "Service Unavailable", "message": "database down"}


def client(handler: Handler, *, retries: int | None = None, api_key: str | None = None) -> Client:
    """A client whose requests go to ``handler``, retrying without waiting."""
    transport = httpx.MockTransport(handler)
    return Client(
        "http://jobs.test", api_key=api_key, retries=retries, backoff=0, transport=transport
    )


def job_answer(status: int = 201) -> httpx.Response:
    return httpx.Response(status, content=orjson.dumps(job_json(make_job())))


class Script:
    """Answers (or raises) the scripted outcomes in order; records every request."""

    def __init__(self, *outcomes: httpx.Response | Exception) -> None:
        self.outcomes = list(outcomes)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def test_the_policy_doubles_its_wait_up_to_the_cap() -> None:
    policy = RetryPolicy(retries=10, first_delay=0.5, max_delay=3)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 3.0]


def test_a_repeatable_call_is_retried_a_bounded_number_of_times() -> None:
    state = RetryState(RetryPolicy(retries=2), repeatable=True)
    lost = httpx.ReadError("reset")
    assert [state.after_error(lost), state.after_status(503), state.after_error(lost)] == [
        0.2,
        0.4,
        None,
    ]


def test_a_call_that_may_have_been_done_is_retried_only_if_never_sent() -> None:
    state = RetryState(RetryPolicy(retries=3), repeatable=False)
    assert state.after_error(httpx.ReadError("reset")) is None
    assert state.after_status(503) is None
    assert state.after_error(httpx.ConnectError("refused")) == 0.2


def test_a_lost_create_answer_is_sent_again_with_the_same_key() -> None:
    script = Script(httpx.ReadError("connection reset"), httpx.Response(503), job_answer(200))
    with client(script) as jobs:
        jobs.create("noop", {"n": 1})
    keys = {request.headers["Idempotency-Key"] for request in script.requests}
    assert len(script.requests) == 3
    assert len(keys) == 1
    assert {request.content for request in script.requests} == {
        b'{"type":"noop","payload":{"n":1}}'
    }


def test_a_create_without_a_key_is_not_sent_again_after_a_lost_answer() -> None:
    script = Script(httpx.ReadError("connection reset"), job_answer())
    with client(script) as jobs, pytest.raises(ConnectError) as caught:
        jobs.create("noop", idempotency_key=None)
    assert len(script.requests) == 1
    assert "Idempotency-Key" not in script.requests[0].headers
    assert caught.value.message == "cannot reach jobqueue at http://jobs.test: connection reset"


def test_a_retry_of_a_job_is_not_sent_again_after_a_503() -> None:
    script = Script(httpx.Response(503, content=orjson.dumps(UNAVAILABLE)), job_answer(200))
    with client(script) as jobs, pytest.raises(UnavailableError, match="database down"):
        jobs.retry(uuid4())
    assert len(script.requests) == 1


def test_after_the_last_retry_the_503_is_raised() -> None:
    script = Script(*[httpx.Response(503, content=orjson.dumps(UNAVAILABLE))] * 3)
    with client(script, retries=2) as jobs, pytest.raises(UnavailableError) as caught:
        jobs.stats()
    assert (caught.value.status, len(script.requests)) == (503, 3)


def test_the_api_key_is_sent_as_a_bearer_token() -> None:
    script = Script(httpx.Response(401, json={"statusCode": 401, "message": "bad key"}))
    with client(script, api_key="s3cret") as jobs, pytest.raises(AuthError):
        jobs.stats()
    assert script.requests[0].headers["Authorization"] == "Bearer s3cret"


def test_settings_come_from_the_environment_when_not_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("JOBQUEUE_URL", "http://elsewhere:9000/")
    monkeypatch.setenv("JOBQUEUE_API_KEY", "from-env")
    monkeypatch.setenv("JOBQUEUE_TIMEOUT", "2.5")
    monkeypatch.setenv("JOBQUEUE_RETRIES", "0")
    with Client() as jobs:
        assert jobs.url == "http://elsewhere:9000"
        assert jobs.connection.headers["Authorization"] == "Bearer from-env"
        assert jobs.connection.timeout.read == 2.5
        assert jobs.connection.policy.retries == 0
    with Client("http://given:1", api_key="given") as jobs:
        assert (jobs.url, jobs.connection.headers["Authorization"]) == (
            "http://given:1",
            "Bearer given",
        )


def int_page(limit: int, offset: int) -> calls.Call[list[int]]:
    return calls.Call(
        "GET", "/numbers", calls.list_of(int), params={"limit": limit, "offset": offset}
    )


def test_a_pager_skips_what_the_previous_page_showed_and_stops_at_a_short_page() -> None:
    pager: Pager[int] = Pager(int_page, lambda n: n, page_size=3)
    assert pager.next_call().params == {"limit": 3, "offset": 0}
    assert pager.take([9, 8, 7]) == [9, 8, 7]
    assert pager.next_call().params == {"limit": 3, "offset": 3}
    # a job created meanwhile pushed 7 onto the second page
    assert pager.take([7, 6, 5]) == [6, 5]
    assert not pager.done
    assert pager.take([4]) == [4]
    assert pager.done


def test_a_pager_refuses_a_page_size_the_api_would() -> None:
    with pytest.raises(ValueError, match="page_size must be from 1 to 500"):
        Pager(int_page, lambda n: n, page_size=501)


def test_iter_jobs_reads_pages_until_a_short_one() -> None:
    pages = [[make_job() for _ in range(2)], [make_job()]]
    script = Script(
        *[httpx.Response(200, content=orjson.dumps([job_json(j) for j in p])) for p in pages]
    )
    with client(script) as jobs:
        ids = [job.id for job in jobs.iter_jobs(status="pending", page_size=2)]
    assert ids == [job.id for page in pages for job in page]
    assert [r.url.params["offset"] for r in script.requests] == ["0", "2"]
    assert {r.url.params["status"] for r in script.requests} == {"pending"}


async def test_the_async_client_retries_and_pages_the_same_way() -> None:
    created = make_job()
    outcomes: list[httpx.Response | Exception] = [
        httpx.ReadError("reset"),
        httpx.Response(201, content=orjson.dumps(job_json(created))),
        httpx.Response(200, content=orjson.dumps([job_json(created)])),
    ]
    script = Script(*outcomes)
    transport = httpx.MockTransport(script)
    async with AsyncClient("http://jobs.test", backoff=0, transport=transport) as jobs:
        job = await jobs.create("noop")
        listed = [job.id async for job in jobs.iter_jobs(page_size=5)]
    assert job.id == created.id
    assert listed == [created.id]
    assert len({r.headers["Idempotency-Key"] for r in script.requests[:2]}) == 1
    assert json.loads(script.requests[0].content) == {"type": "noop", "payload": {}}


def test_a_job_id_may_be_a_uuid_or_its_text() -> None:
    job_id = uuid4()
    assert calls.get(job_id).path == calls.get(str(job_id)).path
    assert UUID(calls.get(job_id).path.rsplit("/", 1)[1]) == job_id


@pytest.mark.parametrize("url", ["localhost:3000", "ftp://jobs.test", "http://", ""])
def test_a_url_that_is_not_http_is_refused_at_once(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBQUEUE_URL", url or "mailto:ops@example.com")
    with pytest.raises(ValueError, match="URL"):
        Client(url or None)


def test_a_bad_setting_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBQUEUE_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="invalid client setting: JOBQUEUE_TIMEOUT: "):
        Client("http://jobs.test")
