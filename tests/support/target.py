"""A loopback HTTP server that plays a webhook receiver: scripted answers, recorded requests."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, cast

from tests.support.serve import LOOPBACK


@dataclass(frozen=True, slots=True)
class Hit:
    """One request the target received."""

    at: float
    """When it arrived (``time.monotonic()``)."""
    path: str
    job_id: str | None
    attempt: str | None
    body: Any


class WebhookTarget:
    """Answers the scripted statuses in order, then ``default``; records every POST."""

    def __init__(self, script: list[int] | None = None, default: int = 200) -> None:
        """Listens on a free loopback port at once, in a daemon thread."""
        self._lock = threading.Lock()
        self._script = list(script or [])
        self._default = default
        self._hits: list[Hit] = []
        self._server = _Server((LOOPBACK, 0), _Handler)
        self._server.target = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """The URL a ``webhook`` job should POST to."""
        return f"http://{LOOPBACK}:{self._server.server_address[1]}/hook"

    @property
    def hits(self) -> list[Hit]:
        """A copy of the requests received so far, in arrival order."""
        with self._lock:
            return list(self._hits)

    def script(self, statuses: list[int], then: int) -> None:
        """Answer the next requests with ``statuses`` in order, and ``then`` to all later ones."""
        with self._lock:
            self._script = list(statuses)
            self._default = then

    def answer_from_now_on(self, status: int) -> None:
        """Drop what is left of the script and answer ``status`` to every later request."""
        self.script([], then=status)

    def record(self, hit: Hit) -> int:
        """Store ``hit`` and return the status to answer it with."""
        with self._lock:
            self._hits.append(hit)
            return self._script.pop(0) if self._script else self._default

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> WebhookTarget:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    target: WebhookTarget


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body: Any = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = raw.decode(errors="replace")
        hit = Hit(
            time.monotonic(),
            self.path,
            self.headers.get("X-Job-Id"),
            self.headers.get("X-Job-Attempt"),
            body,
        )
        status = cast(_Server, self.server).target.record(hit)
        payload = json.dumps({"status": status}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""
