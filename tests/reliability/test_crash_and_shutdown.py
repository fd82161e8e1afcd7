"""A killed process's job runs again; SIGTERM lets running jobs finish or hands them back."""

from __future__ import annotations

import signal
import sqlite3
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import pytest

from jobqueue.config import Settings
from tests.reliability.ledgers import ledger_dir_settings, read_ledgers
from tests.services import postgres_database, private_redis
from tests.support.load import Trickle
from tests.support.serve import Json, ServeFactory, ServeProcess, wait_until

HANDLERS_DIR = Path(__file__).parent / "handler_modules"
HANDLERS = {"JOBQUEUE_HANDLERS": "reliability_handlers", "PYTHONPATH": str(HANDLERS_DIR)}
STILL_RUNNING_CHECK_S = 1.0
EXIT_TIMEOUT_S = 10.0
IN_FLIGHT_MAX = sum(
    int(Settings.model_fields[name].default)
    for name in ("worker_concurrency", "worker_prefetch_max")
)
"""Most jobs one worker process holds at once with the default settings."""


def attempts_seen(log: Path) -> list[int]:
    """The attempt numbers the test handlers noted in ``log``, in order."""
    if not log.exists():
        return []
    return [int(line) for line in log.read_text().split()]


def wait_for_handler(server: ServeProcess, log: Path, attempts: list[int]) -> None:
    """Wait until the handlers noted exactly ``attempts`` (the process must stay up)."""

    def noted() -> bool:
        server.assert_alive()
        return attempts_seen(log) == attempts

    wait_until(noted, 10, f"handler attempts {attempts}", state=lambda: attempts_seen(log))


def stored_job(db: Path, job_id: str) -> tuple[str, int] | None:
    """(status, attempts) read straight from the SQLite file, read-only."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        row = conn.execute(
            "SELECT status, attempts FROM jobs WHERE id IN (?, ?)",
            (uuid.UUID(job_id).hex, job_id),
        ).fetchone()
    return None if row is None else (str(row[0]), int(row[1]))


def assert_stays_up(server: ServeProcess, seconds: float) -> None:
    """The process is still running at every check over ``seconds``."""
    deadline = time.monotonic() + seconds
    for _ in range(int(seconds / 0.05) + 1):
        assert server.alive(), f"exited early with {server.proc and server.proc.poll()}"
        if time.monotonic() >= deadline:
            return
        time.sleep(0.05)


def job_via_api_process(serve: ServeFactory, job_id: str) -> Json:
    """The job as a fresh ``jobqueue api`` process (no worker) on the same database sees it."""
    api = serve("api")
    response = api.get_job(job_id)
    assert response.status_code == 200, response.text
    job: Json = response.json()
    return job


def kill_and_rerun(serve: ServeFactory, log: Path, settings: dict[str, str]) -> None:
    """kill -9 of a serve running a job; the next serve runs the attempt again once the
    lease (2 s) runs out."""
    settings = {**HANDLERS, "JOB_LEASE_MS": "2000", **settings}
    first = serve(**settings)
    job = first.create_job("slow", {"log": str(log)})
    wait_for_handler(first, log, [1])

    first.kill()

    second = serve(**settings)
    done = second.wait_for_status(job["id"], "completed", timeout=30, attempts=2)
    assert attempts_seen(log) == [1, 2], done
    second.stop()


def test_killed_process_job_reruns_after_lease_expiry(serve: ServeFactory, tmp_path: Path) -> None:
    kill_and_rerun(serve, tmp_path / "slow.log", {})


def test_killed_process_job_reruns_in_redis_mode(serve: ServeFactory, tmp_path: Path) -> None:
    """In the Redis mode BullMQ's lock is the lease."""
    with postgres_database() as url, private_redis() as redis:
        settings = {"DATABASE_URL": url, "REDIS_URL": redis.url()}
        kill_and_rerun(serve, tmp_path / "slow.log", settings)


def test_a_live_worker_keeps_a_job_that_runs_longer_than_its_lease(
    serve: ServeFactory, tmp_path: Path
) -> None:
    log, gate = tmp_path / "gated.log", tmp_path / "gate"
    server = serve(**HANDLERS, JOB_LEASE_MS="1000", JOB_BACKOFF_MS="100")
    job = server.create_job("gated", {"log": str(log), "gate": str(gate)})
    wait_for_handler(server, log, [1])

    assert_stays_up(server, 3.5)  # three and a half leases: renewed, never lost
    assert stored_job(tmp_path / "jobs.db", job["id"]) == ("processing", 1)
    gate.touch()
    done = server.wait_for_status(job["id"], "completed", timeout=10)
    assert done["attempts"] == 1
    assert attempts_seen(log) == [1]


def test_sigterm_lets_the_running_job_finish(serve: ServeFactory, tmp_path: Path) -> None:
    log, gate = tmp_path / "gated.log", tmp_path / "gate"
    server = serve(**HANDLERS, SHUTDOWN_GRACE_MS="20000")
    job = server.create_job("gated", {"log": str(log), "gate": str(gate)})
    server.wait_for_status(job["id"], "processing")
    wait_for_handler(server, log, [1])

    server.send_signal(signal.SIGTERM)
    assert_stays_up(server, STILL_RUNNING_CHECK_S)
    assert stored_job(tmp_path / "jobs.db", job["id"]) == ("processing", 1)

    gate.touch()
    assert server.wait_exit(EXIT_TIMEOUT_S) == 0
    finished = job_via_api_process(serve, job["id"])
    assert (finished["status"], finished["attempts"]) == ("completed", 1), finished
    assert attempts_seen(log) == [1]


def test_sigterm_hands_back_a_job_that_outlives_the_grace(
    serve: ServeFactory, tmp_path: Path
) -> None:
    log, gate = tmp_path / "gated.log", tmp_path / "never-opened"
    server = serve(**HANDLERS, SHUTDOWN_GRACE_MS="500")
    job = server.create_job("gated", {"log": str(log), "gate": str(gate)})
    server.wait_for_status(job["id"], "processing")
    wait_for_handler(server, log, [1])

    started = time.monotonic()
    server.send_signal(signal.SIGTERM)
    assert server.wait_exit(EXIT_TIMEOUT_S) == 0
    assert time.monotonic() - started < 5, "shutdown took longer than grace + a few seconds"

    handed_back = job_via_api_process(serve, job["id"])
    assert (handed_back["status"], handed_back["attempts"]) == ("pending", 0), handed_back


def test_a_second_signal_exits_at_once_with_its_status(serve: ServeFactory, tmp_path: Path) -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        log, gate = tmp_path / f"{signum.name}.log", tmp_path / "never-opened"
        server = serve(**HANDLERS, SHUTDOWN_GRACE_MS="60000")
        job = server.create_job("gated", {"log": str(log), "gate": str(gate)})
        wait_for_handler(server, log, [1])

        server.send_signal(signum)
        wait_until(
            lambda: "send it again to exit at once" in server.log_text(),  # noqa: B023
            10,
            "the first signal's log line",
        )
        assert server.alive(), "the first signal must wait for the running job"
        server.send_signal(signum)
        assert server.wait_exit(EXIT_TIMEOUT_S) == 128 + signum
        assert stored_job(tmp_path / "jobs.db", job["id"]) == ("processing", 1)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", ["sqlite", "postgres", "redis"])
def test_kill_9_under_load_loses_nothing(serve: ServeFactory, tmp_path: Path, mode: str) -> None:
    """serve is killed while creates and jobs flow; the next start finishes every accepted
    job. Only jobs that were running at the kill may run twice (at least once delivery)."""
    ledger_dir, ledgers = ledger_dir_settings(tmp_path)
    with ExitStack() as stack:
        settings = {**ledgers, "JOB_LEASE_MS": "2000", "JOB_BACKOFF_MS": "100"}
        if mode != "sqlite":
            settings["DATABASE_URL"] = stack.enter_context(postgres_database())
        if mode == "redis":
            settings["REDIS_URL"] = stack.enter_context(private_redis()).url()
        first = serve(**settings)
        trickle = Trickle(first.base_url, "ledger", rate=200).start()
        wait_until(lambda: len(trickle.answers()) >= 300, 30, "the load to run")
        first.kill()
        answers = trickle.stop()

        second = serve(**settings)
        wait_until(second.nothing_left, 60, "every job to finish", state=second.log_tail)
        accepted = {a.job_id for a in answers if a.job_id is not None}
        runs = sum(read_ledgers(ledger_dir).values(), Counter())
        assert accepted <= set(runs), f"{len(accepted - set(runs))} accepted jobs never ran"
        twice = [job for job, n in runs.items() if n > 1]
        assert len(twice) <= IN_FLIGHT_MAX, twice
        stats = second.client.get("/api/jobs/stats").json()
        assert stats["failed"] == 0, stats
        print(f"kill -9 ({mode}): {len(accepted)} accepted, all completed, {len(twice)} ran twice")
