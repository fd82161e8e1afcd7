"""uvicorn serving the API inside a jobqueue process."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Generator

import structlog
import uvicorn

from jobqueue.api.app import create_app
from jobqueue.config import Settings
from jobqueue.service import JobService

log = structlog.get_logger(__name__)


class ApiServer(uvicorn.Server):
    """uvicorn, minus its own signal handling (the process's stops the worker too)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            host, port = self.config.host, self.config.port
            shown = f"[{host}]" if ":" in host else host
            log.info("Server running at http://%s:%s" % (shown, port))  # noqa: UP031

    def stop(self) -> None:
        """Stop accepting requests and finish the open ones."""
        self.should_exit = True


def api_server(service: JobService, settings: Settings) -> ApiServer:
    """The API over ``service`` on HOST:PORT."""
    config = uvicorn.Config(
        create_app(service, settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=max(1, settings.shutdown_grace_ms // 1000),
    )
    return ApiServer(config)
