"""The HTTP contract's error answers, CORS, DELETE and PATCH, over the real process."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

import httpx
import pytest

from tests.support.serve import ServeProcess, running
from tests.support.target import WebhookTarget

MAX_PAYLOAD_BYTES = 2048
FAR_FUTURE_MS = 3_600_000
"""A delay that keeps a job pending for the whole test."""
JSON_HEADERS = {"Content-Type": "application/json"}
ERROR_KEYS = {"statusCode", "error", "message"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """One ``jobqueue serve`` for the module, with a small body limit and quick retries."""
    settings = {"MAX_PAYLOAD_BYTES": str(MAX_PAYLOAD_BYTES), "JOB_BACKOFF_MS": "100"}
    with running(tmp_path_factory.mktemp("contract"), settings) as process:
        yield process


def assert_error(response: httpx.Response, status: int) -> str:
    """An error in the Node service's exact shape, without internals; returns its message."""
    assert response.status_code == status, response.text
    assert "Traceback" not in response.text, response.text
    assert 'File "' not in response.text, response.text
    body = response.json()
    assert set(body) == ERROR_KEYS, body
    assert body["statusCode"] == status
    assert body["error"] == HTTPStatus(status).phrase
    message = body["message"]
    assert isinstance(message, str), body
    assert message, body
    return message


BAD_INPUT: list[tuple[str, str, dict[str, Any], str]] = [
    ("POST", "/api/jobs", {"content": b'{"type": ', "headers": JSON_HEADERS}, "json"),
    ("POST", "/api/jobs", {"json": {"payload": {}}}, "type"),
    ("POST", "/api/jobs", {"json": {"type": "x" * 101}}, "type"),
    ("POST", "/api/jobs", {"json": {"type": "noop", "payload": "text"}}, "payload"),
    (
        "POST",
        "/api/jobs",
        {"content": b'{"type": "noop", "payload": {"x": NaN}}', "headers": JSON_HEADERS},
        "payload",
    ),
    ("POST", "/api/jobs", {"content": b'{"type": "\xff"}', "headers": JSON_HEADERS}, "json"),
    ("GET", "/api/jobs?limit=501", {}, "limit"),
    ("GET", "/api/jobs?offset=-1", {}, "offset"),
    ("GET", "/api/jobs?status=bogus", {}, "status"),
    ("GET", "/api/jobs/not-a-uuid", {}, "id"),
    ("DELETE", "/api/jobs/not-a-uuid", {}, "id"),
]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "field"),
    BAD_INPUT,
    ids=[
        "bad-json",
        "missing-type",
        "long-type",
        "payload-not-object",
        "payload-nan",
        "body-not-utf8",
        "limit-501",
        "negative-offset",
        "unknown-status",
        "get-non-uuid",
        "delete-non-uuid",
    ],
)
def test_invalid_input_is_400_naming_the_field(
    server: ServeProcess, method: str, path: str, kwargs: dict[str, Any], field: str
) -> None:
    message = assert_error(server.client.request(method, path, **kwargs), 400)
    assert field in message.lower(), message


def test_unknown_job_type_is_400_listing_known_types(server: ServeProcess) -> None:
    response = server.client.post("/api/jobs", json={"type": "no-such-type"})
    message = assert_error(response, 400)
    assert "no-such-type" in message
    for known in ("noop", "send-email", "webhook"):
        assert known in message, message


@pytest.mark.parametrize(
    ("method", "suffix", "kwargs"),
    [
        ("GET", "", {}),
        ("PATCH", "", {"json": {"status": "pending"}}),
        ("DELETE", "", {}),
        ("POST", "/retry", {}),
    ],
    ids=["get", "patch", "delete", "retry"],
)
def test_unknown_job_is_404(
    server: ServeProcess, method: str, suffix: str, kwargs: dict[str, Any]
) -> None:
    path = f"/api/jobs/{uuid.uuid4()}{suffix}"
    assert_error(server.client.request(method, path, **kwargs), 404)


def test_text_body_is_415(server: ServeProcess) -> None:
    response = server.client.post(
        "/api/jobs", content=b"type=noop", headers={"Content-Type": "text/plain"}
    )
    assert_error(response, 415)


def test_body_above_limit_is_413(server: ServeProcess) -> None:
    body = {"type": "noop", "payload": {"blob": "x" * MAX_PAYLOAD_BYTES}}
    assert_error(server.client.post("/api/jobs", json=body), 413)


def test_streamed_body_above_limit_is_413(server: ServeProcess) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"type": "noop", "payload": {"blob": "'
        yield b"x" * MAX_PAYLOAD_BYTES
        yield b'"}}'

    response = server.client.post("/api/jobs", content=chunks(), headers=JSON_HEADERS)
    assert_error(response, 413)


def test_delete_is_204_then_404(server: ServeProcess) -> None:
    job = server.create_job("noop", delayMs=FAR_FUTURE_MS)
    deleted = server.client.delete(f"/api/jobs/{job['id']}")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert_error(server.get_job(job["id"]), 404)


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [("http://localhost:5173", True), ("http://evil.example", False)],
    ids=["configured-origin", "other-origin"],
)
def test_cors_allows_only_the_configured_origin(
    server: ServeProcess, origin: str, allowed: bool
) -> None:
    response = server.client.get("/api/jobs/stats", headers={"Origin": origin})
    assert response.status_code == 200
    header = response.headers.get("Access-Control-Allow-Origin")
    assert header == (origin if allowed else None), dict(response.headers)


def test_a_preflight_from_another_origin_is_refused_in_the_error_shape(
    server: ServeProcess,
) -> None:
    headers = {"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}
    response = server.client.options("/api/jobs", headers=headers)
    assert "origin" in assert_error(response, 400).lower()
    assert "Access-Control-Allow-Origin" not in response.headers


def test_patch_to_completed_on_pending_job_is_409(server: ServeProcess) -> None:
    job = server.create_job("noop", delayMs=FAR_FUTURE_MS)
    response = server.client.patch(f"/api/jobs/{job['id']}", json={"status": "completed"})
    assert_error(response, 409)
    unchanged = server.get_job(job["id"]).json()
    assert (unchanged["status"], unchanged["attempts"]) == ("pending", 0), unchanged


def test_patch_to_pending_on_failed_job_retries_it(
    server: ServeProcess, webhook_target: WebhookTarget
) -> None:
    webhook_target.script([404], then=200)  # 404: a permanent failure on the first attempt
    job = server.create_job("webhook", {"url": webhook_target.url})
    server.wait_for_status(job["id"], "failed", attempts=1)

    response = server.client.patch(f"/api/jobs/{job['id']}", json={"status": "pending"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["attempts"], body["nextRunAt"]) == ("pending", 0, None), body

    server.wait_for_status(job["id"], "completed", attempts=1)
    assert [hit.attempt for hit in webhook_target.hits] == ["1", "1"]
