"""Access and secrets over the real process: passwords stay out of logs and answers, a huge
body is refused without being read whole, a public address needs API keys."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.services import free_port, postgres_database
from tests.support.serve import JOBQUEUE, ServeProcess, running, serve_env, wait_until

SECRET = "S3cret-Pw-4711"
MIB = 1024 * 1024
HUGE_BODY_MIB = 100
RSS_GROWTH_LIMIT_MIB = 40
"""Far below the body: the server must not hold it."""


def peak_rss_mib(pid: int) -> float:
    """VmHWM of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for {pid}")


def test_passwords_in_urls_never_reach_the_log_or_an_answer(tmp_path: Path) -> None:
    closed_port = free_port()  # nothing listens: every Redis call fails and is logged
    with postgres_database() as url:
        settings = {
            "DATABASE_URL": url.replace("postgres@", f"postgres:{SECRET}@", 1),
            "REDIS_URL": f"redis://:{SECRET}@127.0.0.1:{closed_port}/0",
            "SMTP_URL": f"smtp://mailer:{SECRET}@127.0.0.1:{closed_port}",
            "LOG_LEVEL": "debug",
            "REDIS_TIMEOUT_MS": "200",
        }
        server = ServeProcess(tmp_path, settings)
        server.ready_statuses = (200, 503)  # Redis is down on purpose
        try:
            server.start()
            answers = [
                server.client.get("/health"),
                server.client.post("/api/jobs", json={"type": "send-email", "payload": {}}),
                server.client.get("/api/jobs"),
            ]
            wait_until(
                lambda: "Redis not reachable" in server.log_text(), 10, "a Redis error logged"
            )
            assert "database" in server.log_text()  # the redacted startup line was written
            for answer in answers:
                assert SECRET not in answer.text
            assert answers[0].status_code == 503
            assert SECRET not in server.log_text()
        finally:
            server.stop()


def test_a_100_mib_body_is_refused_without_being_read_whole(tmp_path: Path) -> None:
    with running(tmp_path) as server:
        before = peak_rss_mib(server.pid)

        def chunks() -> Iterator[bytes]:
            yield b'{"type": "noop", "payload": {"blob": "'
            for _ in range(HUGE_BODY_MIB):
                yield b"x" * MIB
            yield b'"}}'

        status = _post_streamed(server, chunks())
        assert status == 413
        assert peak_rss_mib(server.pid) - before < RSS_GROWTH_LIMIT_MIB
        assert server.client.get("/health").status_code == 200


def _post_streamed(server: ServeProcess, body: Iterator[bytes]) -> int | None:
    """The status of a streamed POST; None when the server closed the connection instead of
    reading the rest (also a refusal, but then it must have answered 413 first)."""
    headers = {"Content-Type": "application/json"}
    try:
        return server.client.post("/api/jobs", content=body, headers=headers).status_code
    except (httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError):
        return None


def test_a_public_address_without_api_keys_is_refused(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(JOBQUEUE), "serve", "--host", "0.0.0.0", "--port", str(free_port())],
        env=serve_env(tmp_path, {}),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "Refusing to listen on 0.0.0.0 without API keys" in done.stderr
    assert "API_KEYS" in done.stderr
