"""kill -9 between a parent's completion and its child's start: the child still runs, once."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.test_crash_and_shutdown import HANDLERS, attempts_seen, wait_for_handler
from tests.services import RedisServer, postgres_database, private_redis
from tests.support.serve import Json, ServeFactory, ServeProcess, wait_until

CHILD_DELAY_MS = 5000
"""The child becomes due this long after it was created: the parent completes well before,
so the kill falls between the child's release and its start."""


def create_chain(server: ServeProcess, tmp_path: Path, **child: Any) -> tuple[str, str]:
    """A gated parent and a child that notes its runs; their ids."""
    parent = {"log": str(tmp_path / "parent.log"), "gate": str(tmp_path / "gate")}
    steps = [
        {"type": "gated", "payload": parent},
        {"type": "noted", "payload": {"log": str(tmp_path / "child.log")}, **child},
    ]
    response = server.client.post("/api/flows", json={"steps": steps})
    assert response.status_code == 201, response.text
    jobs = {job["key"]: job["id"] for job in response.json()["jobs"]}
    return jobs["0"], jobs["1"]


def job_of(server: ServeProcess, job_id: str) -> Json:
    job: Json = server.get_job(job_id).json()
    return job


def finish_parent(server: ServeProcess, tmp_path: Path, parent: str, child: str) -> None:
    """Open the parent's gate and wait until its completion released the child."""
    wait_for_handler(server, tmp_path / "parent.log", [1])
    (tmp_path / "gate").touch()
    server.wait_for_status(parent, "completed", timeout=10)
    released = job_of(server, child)
    assert (released["status"], released["attempts"]) == ("pending", 0), released


def assert_child_ran_once(
    serve: ServeFactory, settings: dict[str, str], tmp_path: Path, child: str
) -> None:
    second = serve(**settings)
    done = second.wait_for_status(child, "completed", timeout=30)
    assert attempts_seen(tmp_path / "child.log") == [1]
    assert attempts_seen(tmp_path / "parent.log") == [1]
    assert list(done["result"]["parents"].values()) == [{"attempt": 1}]
    second.stop()


@contextmanager
def database_of(mode: str) -> Iterator[dict[str, str]]:
    """The settings of a table-mode database: the default SQLite file, or a fresh PostgreSQL
    database (serve's worker then runs in a process of its own)."""
    if mode == "sqlite":
        yield {}
        return
    with postgres_database() as url:
        yield {"DATABASE_URL": url}


@pytest.mark.parametrize("mode", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_released_child_runs_once_after_a_kill(
    serve: ServeFactory, tmp_path: Path, mode: str
) -> None:
    with database_of(mode) as database:
        settings = {**HANDLERS, **database, "JOB_LEASE_MS": "2000"}
        first = serve(**settings)
        parent, child = create_chain(first, tmp_path, delayMs=CHILD_DELAY_MS)
        finish_parent(first, tmp_path, parent, child)
        first.kill()
        assert_child_ran_once(serve, settings, tmp_path, child)


@contextmanager
def paused(redis: RedisServer) -> Iterator[None]:
    """Redis stopped (SIGSTOP) meanwhile: connections hang instead of failing."""
    assert redis.process is not None
    os.kill(redis.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(redis.process.pid, signal.SIGCONT)


def test_a_child_never_published_runs_once_after_a_kill_in_redis_mode(
    serve: ServeFactory, tmp_path: Path
) -> None:
    """Redis hangs while the parent completes: the child is committed pending but never put
    on BullMQ; the process is killed; the next one's reconciler publishes it."""
    with postgres_database() as url, private_redis() as redis:
        settings = {
            **HANDLERS,
            "DATABASE_URL": url,
            "REDIS_URL": redis.url(),
            "REDIS_TIMEOUT_MS": "500",
            "RECONCILE_INTERVAL_MS": "500",
            "JOB_LEASE_MS": "2000",
        }
        first = serve(**settings)
        parent, child = create_chain(first, tmp_path)
        wait_for_handler(first, tmp_path / "parent.log", [1])
        with paused(redis):
            finish_parent(first, tmp_path, parent, child)
            wait_until(
                lambda: "enqueue failed" in first.log_text(), 10, "the child's publish to fail"
            )
            first.kill()
        assert_child_ran_once(serve, settings, tmp_path, child)
