"""Run the real ``jobqueue`` CLI as a subprocess on a loopback port and talk to it over HTTP."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from jobqueue.config import Settings

JOBQUEUE = Path(sys.executable).with_name("jobqueue")
"""The console script installed in the same virtualenv as the interpreter running pytest."""
LOOPBACK = "127.0.0.1"
READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
POLL_INTERVAL_S = 0.05
LOG_TAIL_LINES = 60

Json = dict[str, Any]

_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    *,
    state: Callable[[], object] | None = None,
    interval: float = POLL_INTERVAL_S,
) -> None:
    """Poll ``condition`` every ``interval`` s; fail naming ``what`` and ``state()`` on timeout."""
    deadline = time.monotonic() + timeout
    for _ in range(math.ceil(timeout / interval) + 1):
        if condition():
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    shown = state() if state is not None else "n/a"
    pytest.fail(f"timed out after {timeout}s waiting for {what}; last state: {shown}")


def serve_env(workdir: Path, settings: Mapping[str, str]) -> dict[str, str]:
    """The process environment: ours minus every jobqueue setting and proxy, plus ``settings``."""
    inherited = {name.upper() for name in Settings.model_fields}
    proxies = {name for var in _PROXY_VARS for name in (var, var.lower())}
    env = {k: v for k, v in os.environ.items() if k.upper() not in inherited and k not in proxies}
    env.update(
        DATABASE_URL=f"sqlite:///{workdir / 'jobs.db'}",
        OUTBOX_DIR=str(workdir / "outbox"),
        LOG_FORMAT="json",
        LOG_LEVEL="info",
        NO_PROXY="127.0.0.1,localhost",
    )
    env.update(settings)
    return env


class ServeProcess:
    """One ``jobqueue <command>`` process (``serve`` by default) with its log in a file."""

    def __init__(
        self, workdir: Path, settings: Mapping[str, str] | None = None, command: str = "serve"
    ) -> None:
        """Nothing starts until ``start``; ``settings`` are environment variables."""
        self.workdir = workdir
        self.command = command
        self.env = serve_env(workdir, settings or {})
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "serve.log"
        self._log_file: IO[bytes] | None = None
        self._client: httpx.Client | None = None
        self.ready_statuses: tuple[int, ...] = (200,)
        """What /health must answer for ``start`` to return (add 503 when a dependency is
        down on purpose)."""

    @property
    def base_url(self) -> str:
        """Where the API listens."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def client(self) -> httpx.Client:
        """An HTTP client bound to this process's base URL."""
        if self._client is None:
            self._client = httpx.Client(base_url=self.base_url, timeout=10.0, trust_env=False)
        return self._client

    @property
    def pid(self) -> int:
        """The process id (the process must have been started)."""
        assert self.proc is not None, "the process was never started"
        return self.proc.pid

    def start(self) -> ServeProcess:
        """Start on a free loopback port and wait until GET /health answers 200."""
        assert JOBQUEUE.exists(), f"{JOBQUEUE} is missing: install the project into this venv"
        self.port = free_port()
        self.log_path = self.workdir / f"{self.command}-{self.port}.log"
        self._log_file = self.log_path.open("wb")
        argv = [str(JOBQUEUE), self.command, "--host", LOOPBACK, "--port", str(self.port)]
        self.proc = subprocess.Popen(
            argv,
            cwd=self.workdir,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(self._ready, READY_TIMEOUT_S, f"{self.command} to be ready", state=self.log_tail)
        return self

    def _ready(self) -> bool:
        self.assert_alive()
        try:
            response = httpx.get(f"{self.base_url}/health", timeout=1.0, trust_env=False)
        except httpx.TransportError:
            return False
        return response.status_code in self.ready_statuses

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def assert_alive(self) -> None:
        """Fail the test with the process's log if it has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            pytest.fail(
                f"jobqueue {self.command} exited with code {self.proc.returncode}; "
                f"log:\n{self.log_tail()}"
            )

    def send_signal(self, signum: signal.Signals) -> None:
        """Send ``signum`` to the process."""
        os.kill(self.pid, signum)

    def wait_exit(self, timeout: float) -> int:
        """The exit code; fails the test with the log if the process outlives ``timeout``."""
        assert self.proc is not None, "the process was never started"
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"jobqueue {self.command} still running after {timeout}s:\n{self.log_tail()}"
            )

    def kill(self) -> int:
        """SIGKILL the process (no chance to clean up) and reap it."""
        self.send_signal(signal.SIGKILL)
        return self.wait_exit(STOP_TIMEOUT_S)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a bound; close the client and the log. Idempotent."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT_S)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def log_text(self) -> str:
        """Everything the process wrote so far (stdout and stderr)."""
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of the log."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    def log_events(self) -> list[Json]:
        """The JSON log lines, parsed (other lines are skipped)."""
        events: list[Json] = []
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                try:
                    events.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return events

    def get_job(self, job_id: str) -> httpx.Response:
        """GET /api/jobs/:id."""
        return self.client.get(f"/api/jobs/{job_id}")

    def create_job(self, job_type: str, payload: Json | None = None, **extra: Any) -> Json:
        """POST /api/jobs, assert 201, and return the job."""
        body = {"type": job_type, "payload": payload or {}, **extra}
        response = self.client.post("/api/jobs", json=body)
        assert response.status_code == 201, response.text
        job: Json = response.json()
        return job

    def nothing_left(self) -> bool:
        """True when no job is pending or processing (and the stats answered)."""
        response = self.client.get("/api/jobs/stats")
        if response.status_code != 200:
            return False
        stats = response.json()
        return bool(stats["pending"] == stats["processing"] == 0)

    def wait_for_job(
        self, job_id: str, done: Callable[[Json], bool], what: str, timeout: float = 10.0
    ) -> Json:
        """Poll GET /api/jobs/:id every 50 ms until ``done(job)``; fail with its last state."""
        last: Json = {}

        def check() -> bool:
            nonlocal last
            self.assert_alive()
            response = self.get_job(job_id)
            last = response.json() if response.status_code == 200 else {"http": response.text}
            return response.status_code == 200 and done(last)

        wait_until(check, timeout, f"job {job_id} to be {what}", state=lambda: last)
        return last

    def wait_for_status(
        self, job_id: str, status: str, timeout: float = 10.0, attempts: int | None = None
    ) -> Json:
        """Wait until the job has ``status`` and, when given, exactly ``attempts``."""

        def done(job: Json) -> bool:
            return job.get("status") == status and attempts in (None, job.get("attempts"))

        what = status if attempts is None else f"{status} with attempts {attempts}"
        return self.wait_for_job(job_id, done, what, timeout)


@contextmanager
def running(
    workdir: Path, settings: Mapping[str, str] | None = None, command: str = "serve"
) -> Iterator[ServeProcess]:
    """A started process, always stopped on exit; its log is printed (shown on failure)."""
    workdir.mkdir(parents=True, exist_ok=True)
    process = ServeProcess(workdir, settings, command)
    try:
        yield process.start()
    finally:
        process.stop()
        print(f"--- jobqueue {command} log ({process.log_path}) ---\n{process.log_tail(200)}")


class ServeFactory:
    """Starts processes for one test and stops every one of them at teardown."""

    def __init__(self, workdir: Path) -> None:
        """Processes run in ``workdir`` (so they share its ``jobs.db`` unless told otherwise)."""
        self.workdir = workdir
        self.started: list[ServeProcess] = []

    def __call__(self, command: str = "serve", **settings: str) -> ServeProcess:
        """Start ``jobqueue <command>`` with ``settings`` (environment variables) and wait."""
        process = ServeProcess(self.workdir, settings, command)
        self.started.append(process)
        return process.start()

    def close(self) -> None:
        """Stop every process started, printing their logs (pytest shows them on failure)."""
        for process in self.started:
            process.stop()
            print(f"--- jobqueue {process.command} log ({process.log_path}) ---")
            print(process.log_tail(200))
