"""``jobqueue serve`` with its worker in a child process: woken at once, replaced when it
dies, never left behind when serve is killed."""

from __future__ import annotations

import os
import signal
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.services import postgres_database, private_redis
from tests.support.serve import Json, ServeFactory, ServeProcess, wait_until

HANDLERS_DIR = Path(__file__).parent / "handler_modules"
HANDLERS = {"JOBQUEUE_HANDLERS": "reliability_handlers", "PYTHONPATH": str(HANDLERS_DIR)}
CHILD = {"WORKER_PROCESSES": "1"}  # on SQLite serve runs one process unless told otherwise
NO_POLL = {**CHILD, "JOB_POLL_INTERVAL_MS": "60000"}  # only a wake-up can start a job in time


def worker_pids(server: ServeProcess) -> list[int]:
    """The pids of the worker processes serve reported starting, in order."""
    events = server.log_events()
    return [int(e["pid"]) for e in events if e.get("event") == "worker process started"]


def process_exists(pid: int) -> bool:
    """True while ``pid`` is a live (not zombie) process."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def event_order(server: ServeProcess, *names: str) -> list[int]:
    """The position of the first log line with each event name (-1 when absent)."""
    events = [e.get("event", "") for e in server.log_events()]
    return [next((i for i, e in enumerate(events) if e.startswith(n)), -1) for n in names]


def test_the_worker_runs_in_its_own_process_and_starts_before_the_api(
    serve: ServeFactory,
) -> None:
    server = serve(**NO_POLL)
    [child] = worker_pids(server)
    assert child != server.pid
    assert process_exists(child)
    started, running = event_order(server, "Worker started", "Server running at")
    assert 0 <= started < running, server.log_tail()
    job: Json = server.create_job("noop")
    # Polling every 60 s: only serve's wake-up over the socket can start it this soon.
    server.wait_for_status(job["id"], "completed", timeout=5)


def test_a_dead_worker_process_is_replaced(serve: ServeFactory) -> None:
    server = serve(**NO_POLL)
    [first] = worker_pids(server)
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: len(worker_pids(server)) == 2, 15, "a second worker process")
    job = server.create_job("noop")
    server.wait_for_status(job["id"], "completed", timeout=5)
    assert server.alive()


def test_killing_serve_takes_its_worker_process_along(serve: ServeFactory, tmp_path: Path) -> None:
    log = tmp_path / "slow.log"
    server = serve(**HANDLERS, **CHILD, JOB_LEASE_MS="2000")
    [child] = worker_pids(server)
    job = server.create_job("slow", {"log": str(log)})
    server.wait_for_status(job["id"], "processing")

    server.kill()
    wait_until(lambda: not process_exists(child), 10, f"worker process {child} to end")

    # As after any crash, the job runs again after its lease.
    again = serve(**HANDLERS, **CHILD, JOB_LEASE_MS="2000")
    again.wait_for_status(job["id"], "completed", timeout=30, attempts=2)


def test_sigterm_stops_the_worker_process_too(serve: ServeFactory) -> None:
    server = serve(**CHILD)
    [child] = worker_pids(server)
    server.send_signal(signal.SIGTERM)
    assert server.wait_exit(15) == 0
    assert not process_exists(child)
    assert "Worker stopped" in [e.get("event") for e in server.log_events()]


def test_on_sqlite_serve_is_one_process_by_default(serve: ServeFactory) -> None:
    server = serve(JOB_POLL_INTERVAL_MS="60000")
    assert worker_pids(server) == []
    job = server.create_job("noop")
    server.wait_for_status(job["id"], "completed", timeout=5)


def test_on_postgresql_serve_runs_its_worker_beside_the_api(serve: ServeFactory) -> None:
    with postgres_database() as url:
        server = serve(DATABASE_URL=url, JOB_POLL_INTERVAL_MS="60000")
        [child] = worker_pids(server)
        assert process_exists(child)
        job = server.create_job("noop")
        server.wait_for_status(job["id"], "completed", timeout=5)
        server.stop()


@pytest.mark.parametrize("mode", ["sqlite", "redis"])
def test_a_job_that_kills_its_worker_every_time_ends_in_the_dlq(
    serve: ServeFactory, tmp_path: Path, mode: str
) -> None:
    """In the Redis mode BullMQ's lock is the lease: its stalled-job check re-delivers."""
    with ExitStack() as stack:
        queue: dict[str, str] = {}
        if mode == "redis":
            queue["DATABASE_URL"] = stack.enter_context(postgres_database())
            queue["REDIS_URL"] = stack.enter_context(private_redis()).url()
        log = tmp_path / "poison.log"
        server = serve(**HANDLERS, **CHILD, **queue, JOB_LEASE_MS="1000", JOB_BACKOFF_MS="100")
        job = server.create_job("poison", {"log": str(log)}, maxAttempts=3)

        failed = server.wait_for_status(job["id"], "failed", timeout=60, attempts=3)
        assert log.read_text().split() == ["1", "2", "3"]
        assert failed["lastError"].startswith("attempts exhausted (3/3): lease expired")
        [entry] = server.client.get("/api/dlq").json()
        assert entry["jobId"] == job["id"]
        assert "the worker running this attempt stopped" in entry["reason"]
        # The worker processes it killed were replaced: the next job still runs.
        assert len(worker_pids(server)) == 4
        after = server.create_job("noop")
        server.wait_for_status(after["id"], "completed", timeout=10)
        server.stop()


def test_a_cancel_reaches_a_running_handler_in_the_worker_process(
    serve: ServeFactory, tmp_path: Path
) -> None:
    """The API process takes the cancel; the worker process, which runs the job, hears it
    through the database and stops the handler (which ignores it) after the grace period."""
    log, gate = tmp_path / "gated.log", tmp_path / "never-opened"
    with postgres_database() as url:
        server = serve(**HANDLERS, DATABASE_URL=url, JOB_CANCEL_GRACE_MS="200")
        job = server.create_job("gated", {"log": str(log), "gate": str(gate)})
        wait_until(lambda: log.exists() and log.read_text().split() == ["1"], 10, "the handler")
        cancelled = server.client.post(f"/api/jobs/{job['id']}/cancel")
        assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")

        def history() -> list[Json]:
            answer: list[Json] = server.client.get(f"/api/jobs/{job['id']}/attempts").json()
            return answer

        wait_until(lambda: len(history()) == 1, 15, "the cancelled attempt", state=history)
        assert history()[0]["outcome"] == "cancelled"
        assert server.get_job(job["id"]).json()["status"] == "cancelled"
        assert log.read_text().split() == ["1"]  # not retried
        server.stop()
