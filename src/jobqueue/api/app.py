"""The FastAPI application."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from fastapi import FastAPI, Request
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from jobqueue import __version__
from jobqueue.api.errors import error_response, install_error_handlers
from jobqueue.api.flow_routes import router as flow_router
from jobqueue.api.limits import METRICS_PATH, ApiKeyGuard, BodySizeLimit
from jobqueue.api.openapi import finish_openapi
from jobqueue.api.responses import json_response
from jobqueue.api.routes import router
from jobqueue.config import Settings
from jobqueue.dashboard import install_dashboard
from jobqueue.metrics import exposition
from jobqueue.service import JobService


class StrictCors(CORSMiddleware):
    """Starlette's CORS with exact origins, refusing preflights in the service's error shape.

    A request without an Origin header (any client but a browser) skips Starlette's
    header parsing: its answer only gets the ``Vary: Origin`` that tells caches the
    CORS headers depend on that header.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not _has_origin(scope["headers"]):
            await self.app(scope, receive, _varying_by_origin(send))
            return
        await super().__call__(scope, receive, send)

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 400:
            return response
        reason = response.body.decode() if isinstance(response.body, bytes) else "refused"
        refused = error_response(400, f"CORS preflight refused: {reason}")
        refused.headers.update({"Vary": "Origin"})
        return refused


def _has_origin(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    return any(name == b"origin" for name, _value in headers)


def _varying_by_origin(send: Send) -> Send:
    # Appended as a field line of its own, which means the same as Starlette's comma-joined
    # one (RFC 9110, 5.3).
    async def send_varying(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), (b"vary", b"Origin")]
        await send(message)

    return send_varying


def create_app(service: JobService, settings: Settings) -> FastAPI:
    """The API over ``service``; the caller owns the service's lifetime."""
    app = FastAPI(
        title="jobqueue",
        version=__version__,
        description="Background jobs over HTTP: create, list, retry; workers run handlers.",
    )
    app.state.service = service
    finish_openapi(app)
    app.state.settings = settings
    install_error_handlers(app)
    # The /api routes join the app's own router as they are: include_router would put them
    # behind a router that matches every request twice (measured: 14 us of a 90 us GET).
    app.router.routes.extend(router.routes)
    app.router.routes.extend(flow_router.routes)
    app.add_api_route("/health", health, methods=["GET"], tags=["health"])
    # Prometheus's text format, not JSON: described in docs/monitoring.md, not in OpenAPI.
    app.add_api_route(METRICS_PATH, metrics, methods=["GET"], include_in_schema=False)
    install_dashboard(app)
    # Middleware added last runs first: the size limit, then CORS (which answers
    # preflights, and labels 401s so that a browser can read them), then the key check (of
    # /api only: the dashboard's files hold no data, and its calls to /api carry the key).
    if settings.api_keys:
        app.add_middleware(
            ApiKeyGuard, keys=settings.api_keys, public_metrics=settings.metrics_public
        )
    app.add_middleware(
        StrictCors,
        allow_origins=settings.cors_origin,
        allow_credentials=True,
        allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["Content-Type", "Authorization", "Idempotency-Key"],
    )
    app.add_middleware(BodySizeLimit, limit=settings.max_payload_bytes)
    return app


async def health(request: Request) -> Response:
    """200 when the database and the queue answer; 503 naming the one that does not."""
    service: JobService = request.app.state.service
    settings: Settings = request.app.state.settings
    checks = await check_dependencies(service, settings.db_timeout_ms / 1000)
    healthy = all(result == "ok" for result in checks.values())
    body: dict[str, object] = {"status": "ok" if healthy else "error", **checks}
    if not healthy:
        failing = ", ".join(name for name, result in checks.items() if result != "ok")
        body["message"] = f"{failing} unreachable"
    return json_response(body, 200 if healthy else 503)


async def metrics(request: Request) -> Response:
    """Prometheus's text format: every process's counts, and the queue's state read now."""
    service: JobService = request.app.state.service
    state = await service.queue_state()
    # In multiprocess mode the counts are read from files: off the event loop.
    body = await asyncio.to_thread(exposition, service.metrics, state)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


async def check_dependencies(service: JobService, timeout_s: float) -> dict[str, str]:
    """``ok`` or the error's kind per dependency, each bounded by ``timeout_s``."""
    probes = {"database": service.store.ping}
    if service.broker.dependency is not None:
        probes[service.broker.dependency] = service.broker.ping
    results: dict[str, str] = {}
    for name, probe in probes.items():
        try:
            await asyncio.wait_for(probe(), timeout_s)
            results[name] = "ok"
        except Exception as exc:
            results[name] = f"unavailable ({type(exc).__name__})"
    return results
