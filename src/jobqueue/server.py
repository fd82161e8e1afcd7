"""Run the API, the worker, or both in one event loop, and shut them down gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Callable, Coroutine, Generator
from typing import Any

import structlog
import uvicorn

from jobqueue.api.app import create_app
from jobqueue.config import Settings
from jobqueue.runtime import Runtime
from jobqueue.store.migrate import migrate_async

log = structlog.get_logger(__name__)


class ApiServer(uvicorn.Server):
    """uvicorn, minus its own signal handling (ours stops the worker too)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            host, port = self.config.host, self.config.port
            shown = f"[{host}]" if ":" in host else host
            log.info("Server running at http://%s:%s" % (shown, port))  # noqa: UP031


async def run_process(settings: Settings, *, api: bool, worker: bool, migrate: bool) -> None:
    """Start what was asked for; on SIGTERM or SIGINT stop it all and return."""
    stopping = asyncio.Event()
    stoppers: list[Callable[[], None]] = [stopping.set]
    # Handle signals from the first moment, so that a stop during start-up also exits 0.
    _on_signals(lambda: [stop() for stop in stoppers])
    if migrate:
        log.info("applying migrations", database=_redacted(settings.database_url))
        await migrate_async(settings.database_url)
    if stopping.is_set():
        log.info("stopped during start-up")
        return
    runtime = Runtime.build(settings)
    parts: list[Coroutine[Any, Any, None]] = []
    if worker:
        job_worker = runtime.worker()
        parts.append(job_worker.run())
        stoppers.append(job_worker.stop)
    if api:
        server = ApiServer(_uvicorn_config(runtime, settings))
        parts.append(server.serve())
        stoppers.append(lambda: setattr(server, "should_exit", True))
    try:
        await asyncio.gather(*parts)
    finally:
        await runtime.close()
        log.info("shutdown complete")


def _uvicorn_config(runtime: Runtime, settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(runtime.service, settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=max(1, settings.shutdown_grace_ms // 1000),
    )


def _on_signals(stop: Any) -> None:
    loop = asyncio.get_running_loop()
    received = 0

    def handle(signum: int) -> None:
        nonlocal received
        received += 1
        log.info("signal received; shutting down", signal=signal.Signals(signum).name)
        stop()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, handle, signum)


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
