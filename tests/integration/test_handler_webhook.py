"""``webhook`` against a real loopback HTTP/1.1 server that records what it receives."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

import pytest

from jobqueue.config import Settings
from jobqueue.handlers.registry import JobContext, PermanentError
from jobqueue.handlers.webhook import WebhookError, webhook

REASONS = {200: "OK", 204: "No Content", 302: "Found", 404: "Not Found", 408: "Request Timeout"}


@dataclass
class Received:
    """One request as the server read it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HookServer:
    """A minimal HTTP server: ``/status/<code>`` answers that code, ``/hang`` never answers."""

    port: int = 0
    requests: list[Received] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` on this server."""
        return f"http://127.0.0.1:{self.port}{path}"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Read one request, record it, answer as its path says."""
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)  # awaited at teardown, so none outlives the test's event loop
        received = await _read_request(reader)
        self.requests.append(received)
        if received.path == "/hang":
            await self.release.wait()  # set at teardown: no reply within any client timeout
            writer.close()
            return
        code = int(received.path.rsplit("/", 1)[-1]) if "/status/" in received.path else 200
        extra = "Location: http://127.0.0.1/elsewhere\r\n" if 300 <= code < 400 else ""
        writer.write(
            f"HTTP/1.1 {code} {REASONS.get(code, 'Whatever')}\r\n{extra}"
            "Content-Length: 2\r\nConnection: close\r\n\r\nok".encode()
        )
        await writer.drain()
        writer.close()


async def _read_request(reader: asyncio.StreamReader) -> Received:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    request_line, *lines = head.strip().split("\r\n")
    method, path, _ = request_line.split(" ")
    headers = {}
    for line in lines:
        name, value = line.split(":", 1)
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Received(method, path, headers, body)


@pytest.fixture
async def hook_server() -> AsyncIterator[HookServer]:
    """The server, listening on a free loopback port for the test's duration."""
    hooks = HookServer()
    server = await asyncio.start_server(hooks.serve, "127.0.0.1", 0)
    hooks.port = server.sockets[0].getsockname()[1]
    try:
        yield hooks
    finally:
        hooks.release.set()
        await asyncio.gather(*hooks.tasks, return_exceptions=True)
        server.close()
        await server.wait_closed()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound but not listening: connecting is refused, and nobody else can take it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def _ctx(attempt: int = 1) -> JobContext:
    return JobContext(uuid4(), "webhook", attempt, 5, Settings())


async def test_success_posts_json_body_with_job_headers(hook_server: HookServer) -> None:
    ctx = _ctx(attempt=3)
    payload = {
        "url": hook_server.url("/hook"),
        "body": {"event": "signup", "n": [1, 2]},
        "headers": {"Authorization": "Bearer t", "x-job-id": "spoofed"},
    }

    result = await webhook(payload, ctx)

    assert result == {"status": 200}
    [received] = hook_server.requests
    assert (received.method, received.path) == ("POST", "/hook")
    assert received.headers["x-job-id"] == str(ctx.job_id)
    assert received.headers["x-job-attempt"] == "3"
    assert received.headers["authorization"] == "Bearer t"
    assert received.headers["content-type"] == "application/json"
    assert json.loads(received.body) == {"event": "signup", "n": [1, 2]}


async def test_default_body_is_empty_object_and_any_2xx_succeeds(hook_server: HookServer) -> None:
    result = await webhook({"url": hook_server.url("/status/204")}, _ctx())

    assert result == {"status": 204}
    assert json.loads(hook_server.requests[0].body) == {}


async def test_null_body_is_sent_as_json_null(hook_server: HookServer) -> None:
    await webhook({"url": hook_server.url("/hook"), "body": None}, _ctx())

    assert hook_server.requests[0].body == b"null"
    assert hook_server.requests[0].headers["content-type"] == "application/json"


async def test_404_is_permanent_and_names_status_and_url(hook_server: HookServer) -> None:
    url = hook_server.url("/status/404")

    with pytest.raises(PermanentError, match="404") as caught:
        await webhook({"url": url}, _ctx())
    assert url in str(caught.value)


async def test_redirect_is_permanent_not_followed(hook_server: HookServer) -> None:
    with pytest.raises(PermanentError, match=r"302 .*redirects are not followed"):
        await webhook({"url": hook_server.url("/status/302")}, _ctx())
    assert len(hook_server.requests) == 1


@pytest.mark.parametrize("code", [408, 429, 500, 503])
async def test_retryable_status_raises_ordinary_error(hook_server: HookServer, code: int) -> None:
    with pytest.raises(WebhookError, match=str(code)) as caught:
        await webhook({"url": hook_server.url(f"/status/{code}")}, _ctx())
    assert not isinstance(caught.value, PermanentError)


async def test_timeout_raises_ordinary_error(hook_server: HookServer) -> None:
    payload: dict[str, Any] = {"url": hook_server.url("/hang"), "timeoutMs": 200}

    with pytest.raises(WebhookError, match="timed out after 200 ms") as caught:
        await webhook(payload, _ctx())
    assert not isinstance(caught.value, PermanentError)
    assert len(hook_server.requests) == 1


async def test_refused_connection_raises_ordinary_error(closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}/hook"

    with pytest.raises(WebhookError, match=f"127.0.0.1:{closed_port}") as caught:
        await webhook({"url": url}, _ctx())
    assert not isinstance(caught.value, PermanentError)
