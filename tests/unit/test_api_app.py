"""The HTTP layer alone, over a stub service: statuses, bodies, limits, keys and CORS."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, MutableMapping
from typing import Any, cast
from uuid import UUID

import httpx
import pytest
import structlog

from jobqueue.api.app import create_app
from jobqueue.api.errors import DATABASE_DOWN
from jobqueue.config import Settings
from jobqueue.domain.errors import JobNotFoundError
from jobqueue.domain.jobs import Job, NewJob
from jobqueue.service import JobService
from jobqueue.store.base import StoreUnavailableError
from tests.unit.factories import make_job

ORIGIN = "http://localhost:5173"
LIMIT = 2048
KEY = "s3cret"


class StubService:
    """The service methods the API calls, in memory; ``error`` is raised by every call."""

    def __init__(self) -> None:
        self.jobs: dict[UUID, Job] = {}
        self.error: Exception | None = None

    async def create(self, new: NewJob) -> tuple[Job, bool]:
        self._fail()
        for job in self.jobs.values():
            if new.idempotency_key and job.idempotency_key == new.idempotency_key:
                return job, False
        job = make_job(type=new.type, payload=new.payload, idempotency_key=new.idempotency_key)
        self.jobs[job.id] = job
        return job, True

    async def get(self, job_id: UUID) -> Job:
        self._fail()
        if job_id not in self.jobs:
            raise JobNotFoundError(job_id)
        return self.jobs[job_id]

    async def stats(self) -> dict[str, int]:
        self._fail()
        return {"pending": len(self.jobs), "processing": 0, "completed": 0, "failed": 0}

    def _fail(self) -> None:
        if self.error is not None:
            raise self.error


@pytest.fixture
def service() -> StubService:
    """An empty stub service."""
    return StubService()


def client_for(service: StubService, **settings: Any) -> httpx.AsyncClient:
    """A client of the app over ``service``; app errors become 500 answers, as in a server."""
    config = Settings(_env_file=None, max_payload_bytes=LIMIT, cors_origin=ORIGIN, **settings)
    app = create_app(cast(JobService, service), config)
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


@pytest.fixture
async def client(service: StubService) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app without API keys."""
    async with client_for(service) as client:
        yield client


@pytest.fixture
def logs() -> Iterator[list[MutableMapping[str, Any]]]:
    """The structlog events emitted during the test."""
    with structlog.testing.capture_logs() as captured:
        yield captured


def error_of(response: httpx.Response, status: int) -> str:
    """The message of an error answer in the Node service's shape."""
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["statusCode", "error", "message"], body
    assert body["statusCode"] == status
    message: str = body["message"]
    return message


async def test_create_is_201_and_a_repeated_key_200_with_the_first_job(
    client: httpx.AsyncClient,
) -> None:
    body = {"type": "noop", "payload": {"n": 1}}
    first = await client.post("/api/jobs", json=body, headers={"Idempotency-Key": "k1"})
    again = await client.post("/api/jobs", json={**body, "idempotencyKey": "k1"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    assert first.headers["content-type"] == "application/json"


async def test_a_job_is_read_back_as_created(client: httpx.AsyncClient) -> None:
    created = (await client.post("/api/jobs", json={"type": "noop"})).json()
    response = await client.get(f"/api/jobs/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"type": "noop", "payload": {"x": NaN}}', "body/payload/x: NaN and Infinity"),
        (b'{"type": ', "body: invalid JSON"),
        (b'{"type": "\xff"}', "body: invalid JSON"),
        (b'{"payload": {}}', "body/type: Field required"),
        (b'{"type": "noop", "payload": []}', "body/payload: Input should be a valid dictionary"),
    ],
    ids=["nan", "truncated", "not-utf8", "missing-type", "payload-not-object"],
)
async def test_invalid_bodies_are_400_naming_the_field(
    client: httpx.AsyncClient, content: bytes, message: str
) -> None:
    headers = {"Content-Type": "application/json"}
    response = await client.post("/api/jobs", content=content, headers=headers)
    assert error_of(response, 400).startswith(message)


@pytest.mark.parametrize("content_type", ["text/plain", None], ids=["text", "none"])
async def test_a_body_not_declared_json_is_415(
    client: httpx.AsyncClient, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.post("/api/jobs", content=b'{"type": "noop"}', headers=headers)
    assert "application/json" in error_of(response, 415)


async def test_a_body_above_the_limit_is_413_declared_or_streamed(
    client: httpx.AsyncClient,
) -> None:
    big = {"type": "noop", "payload": {"blob": "x" * LIMIT}}
    assert "MAX_PAYLOAD_BYTES" in error_of(await client.post("/api/jobs", json=big), 413)

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"type": "noop", "payload": {"blob": "'
        yield b"x" * LIMIT
        yield b'"}}'

    streamed = await client.post(
        "/api/jobs", content=chunks(), headers={"Content-Type": "application/json"}
    )
    error_of(streamed, 413)


async def test_ids_are_uuids_and_unknown_ones_404(client: httpx.AsyncClient) -> None:
    assert "params/id" in error_of(await client.get("/api/jobs/not-a-uuid"), 400)
    missing = "/api/jobs/550e8400-e29b-41d4-a716-446655440000"
    assert error_of(await client.get(missing), 404) == "Job not found"


async def test_an_idempotency_key_above_255_characters_is_400(client: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "k" * 256}
    response = await client.post("/api/jobs", json={"type": "noop"}, headers=headers)
    assert error_of(response, 400) == (
        "headers/Idempotency-Key: String should have at most 255 characters"
    )


async def test_keys_when_set_are_required_on_every_api_route(service: StubService) -> None:
    async with client_for(service, api_keys=f"other,{KEY}") as client:
        error_of(await client.get("/api/jobs/stats"), 401)
        error_of(await client.get("/api/no-such-route"), 401)
        wrong = {"Authorization": "Bearer nope"}
        error_of(await client.post("/api/jobs", json={"type": "noop"}, headers=wrong), 401)
        right = {"Authorization": f"bearer  {KEY} "}
        assert (await client.get("/api/jobs/stats", headers=right)).status_code == 200
        assert (await client.get("/openapi.json")).status_code == 200


async def test_with_keys_a_browser_can_ask_first_and_read_its_401(service: StubService) -> None:
    asks = {"Origin": ORIGIN, "Access-Control-Request-Method": "GET"}
    async with client_for(service, api_keys=KEY) as client:
        assert (await client.options("/api/jobs/stats", headers=asks)).status_code == 200
        refused = await client.get("/api/jobs/stats", headers={"Origin": ORIGIN})
        error_of(refused, 401)
        assert refused.headers["access-control-allow-origin"] == ORIGIN


async def test_cors_reflects_only_the_configured_origin(client: httpx.AsyncClient) -> None:
    allowed = await client.get("/api/jobs/stats", headers={"Origin": ORIGIN})
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert allowed.headers["access-control-allow-credentials"] == "true"
    other = await client.get("/api/jobs/stats", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    plain = await client.get("/api/jobs/stats")
    assert "access-control-allow-origin" not in plain.headers
    # Whether CORS headers come depends on Origin: caches must know, with or without one.
    assert allowed.headers["vary"] == other.headers["vary"] == plain.headers["vary"] == "Origin"


async def test_preflights_are_answered_or_refused_in_the_error_shape(
    client: httpx.AsyncClient,
) -> None:
    asks = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    allowed = await client.options("/api/jobs", headers={"Origin": ORIGIN, **asks})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    refused = await client.options("/api/jobs", headers={"Origin": "http://evil.example", **asks})
    assert "origin" in error_of(refused, 400).lower()
    assert "access-control-allow-origin" not in refused.headers


async def test_an_unavailable_database_is_503_in_plain_words(
    client: httpx.AsyncClient, service: StubService, logs: list[MutableMapping[str, Any]]
) -> None:
    service.error = StoreUnavailableError("connection refused by 10.0.0.7:5432")
    assert error_of(await client.get("/api/jobs/stats"), 503) == DATABASE_DOWN
    assert [(e["event"], e["error"]) for e in logs] == [
        ("dependency unavailable", "StoreUnavailableError")
    ]


async def test_an_unexpected_error_is_500_and_its_traceback_only_logged(
    client: httpx.AsyncClient, service: StubService, logs: list[MutableMapping[str, Any]]
) -> None:
    service.error = KeyError("internal detail")
    response = await client.get("/api/jobs/stats")
    assert error_of(response, 500) == "Internal Server Error"
    assert "internal detail" not in response.text
    [event] = logs
    assert (event["event"], event["log_level"]) == ("unhandled error", "error")
    assert isinstance(event["exc_info"], KeyError)


async def test_openapi_documents_every_routes_bodies(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert json_schema(paths["/api/jobs"]["post"]["requestBody"]) == {
        "$ref": "#/components/schemas/CreateJobBody"
    }
    assert json_schema(paths["/api/jobs"]["post"]["responses"]["201"]) == {
        "$ref": "#/components/schemas/JobOut"
    }
    assert paths["/api/jobs"]["post"]["parameters"][0]["name"] == "Idempotency-Key"
    assert "requestBody" in paths["/api/jobs/{id}"]["patch"]
    assert "requestBody" in paths["/api/jobs/batch"]["post"]
    for path, methods in paths.items():
        for method, operation in methods.items():
            if path.startswith("/api") and method != "delete":
                success = next(code for code in operation["responses"] if code.startswith("2"))
                assert json_schema(operation["responses"][success]), (method, path)


def json_schema(part: dict[str, Any]) -> Any:
    """The JSON schema of an OpenAPI request body or response."""
    return part["content"]["application/json"]["schema"]
