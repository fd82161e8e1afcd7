"""A steady trickle of creates in a thread of its own, every answer recorded with its latency."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

CLIENT_TIMEOUT_S = 30.0
"""Far above any bound a test sets, so that a hang shows up as a slow answer, not an error."""


@dataclass(frozen=True, slots=True)
class Answer:
    """One POST /api/jobs and what came back."""

    sent_at: float
    """``time.monotonic()`` when it was sent."""
    seconds: float
    """How long the answer took."""
    status: int
    """The HTTP status; 0 when the connection failed."""
    job_id: str | None
    """The job's id on 201."""
    message: str
    """The error message of any other answer."""


class Trickle:
    """POSTs ``job_type`` jobs at ``rate`` per second, ``limit`` at most, until ``stop``."""

    def __init__(
        self, base_url: str, job_type: str, *, rate: float = 100.0, limit: int = 5000
    ) -> None:
        """Nothing is sent before ``start``."""
        self.base_url = base_url
        self.job_type = job_type
        self.interval = 1 / rate
        self.limit = limit
        self._answers: list[Answer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="trickle", daemon=True)

    def start(self) -> Trickle:
        """Begin sending."""
        self._thread.start()
        return self

    def stop(self) -> list[Answer]:
        """Stop sending (the request in flight is waited for); every answer, in order."""
        self._stop.set()
        self._thread.join(CLIENT_TIMEOUT_S + 5)
        assert not self._thread.is_alive(), "the trickle's request never came back"
        return self.answers()

    def answers(self, since: float = 0.0) -> list[Answer]:
        """The answers to requests sent at or after ``since`` (monotonic seconds)."""
        with self._lock:
            return [answer for answer in self._answers if answer.sent_at >= since]

    def _run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=CLIENT_TIMEOUT_S, trust_env=False) as c:
            for _ in range(self.limit):
                started = time.monotonic()
                answer = self._post(c, started)
                with self._lock:
                    self._answers.append(answer)
                pause = self.interval - (time.monotonic() - started)
                if self._stop.wait(max(0.0, pause)):
                    return

    def _post(self, client: httpx.Client, started: float) -> Answer:
        body: dict[str, Any] = {"type": self.job_type, "payload": {}}
        try:
            response = client.post("/api/jobs", json=body)
        except httpx.TransportError as exc:
            return Answer(started, time.monotonic() - started, 0, None, repr(exc))
        seconds = time.monotonic() - started
        data = response.json()
        if response.status_code == 201:
            return Answer(started, seconds, 201, str(data["id"]), "")
        return Answer(started, seconds, response.status_code, None, str(data.get("message")))
