"""A dependency fails under load: PostgreSQL restarts, Redis restarts or is flushed, the SQLite
disk fills up. Meanwhile the API answers every request fast (503 only where the request needs
what is down), workers wait with bounded backoff and bounded logging, and once the dependency
is back every job the API accepted completes, run once.

Each scenario runs on private servers (or a private tmpfs) that the test breaks on purpose;
the machine's own PostgreSQL and Redis are never touched beyond a fresh database.
"""

from __future__ import annotations

import errno
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.reliability.ledgers import ledger_dir_settings, read_ledgers
from tests.services import postgres_database, private_postgres, private_redis, unavailable
from tests.support.load import Answer, Trickle
from tests.support.serve import ServeFactory, ServeProcess, wait_until

OUTAGE_S = 3.0
"""How long each dependency stays broken while the load goes on."""
ANSWER_BOUND_S = 3.0
"""Slowest answer allowed while a dependency is down: DB_TIMEOUT_MS (2 s) and a margin."""
LOG_LINES_PER_OUTAGE_S = 10
"""Most log lines per second of outage, whatever the request rate (100/s here)."""
SETTINGS = {
    "DB_TIMEOUT_MS": "2000",
    "REDIS_TIMEOUT_MS": "500",
    "JOB_LEASE_MS": "3000",
    "JOB_BACKOFF_MS": "100",
    "RECONCILE_INTERVAL_MS": "500",
}


@dataclass(frozen=True, slots=True)
class Fault:
    """A way to break a dependency and to mend it."""

    name: str
    apply: Callable[[], object]
    mend: Callable[[], object]
    refuses_creates: bool
    """True when creates need the broken dependency (the database): they answer 503."""


@dataclass(frozen=True, slots=True)
class Recovery:
    """What a scenario measured."""

    answers: list[Answer]
    during: list[Answer]
    log_lines_during: int
    first_create_after_s: float
    all_done_after_s: float


def ride_out(server: ServeProcess, fault: Fault) -> Recovery:
    """Load, break, wait OUTAGE_S under load, mend; then wait until every job is finished."""
    trickle = Trickle(server.base_url, "ledger", rate=100).start()
    try:
        wait_until(lambda: len(trickle.answers()) >= 50, 20, "the load to run")
        lines_before, broken_at = len(complaints(server)), time.monotonic()
        fault.apply()
        wait_until(
            lambda: (
                time.monotonic() - broken_at >= OUTAGE_S and len(trickle.answers(broken_at)) > 20
            ),
            OUTAGE_S + 30,
            "the outage to last under load",
        )
        lines_during = len(complaints(server)) - lines_before
        during = trickle.answers(broken_at)
        fault.mend()
        mended_at = time.monotonic()
        first_create = wait_for_creates(trickle, mended_at)
    finally:
        answers = trickle.stop()
    wait_until(server.nothing_left, 60, "every job to finish", state=server_state(server))
    return Recovery(
        answers, during, lines_during, first_create - mended_at, time.monotonic() - mended_at
    )


def complaints(server: ServeProcess) -> list[str]:
    """The log's warnings and errors (info lines come with every job, fault or not)."""
    levels = {"warning", "error", "critical"}
    return [
        f"{e.get('event')} {e.get('error', '')}"
        for e in server.log_events()
        if e.get("level") in levels
    ]


def wait_for_creates(trickle: Trickle, since: float) -> float:
    """When the first create after ``since`` was accepted; waits for 20 in a row."""

    def twenty_in_a_row() -> bool:
        statuses = [answer.status for answer in trickle.answers(since)]
        return statuses[-20:] == [201] * 20

    wait_until(twenty_in_a_row, 30, "creates to be accepted again")
    return next(a.sent_at for a in trickle.answers(since) if a.status == 201)


def server_state(server: ServeProcess) -> Callable[[], object]:
    return lambda: (server.client.get("/api/jobs/stats").text, server.log_tail(15))


def check(server: ServeProcess, fault: Fault, ledger_dir: Path, recovery: Recovery) -> None:
    """Fast answers, 503 only where due, bounded logs, every accepted job completed once."""
    allowed = {201, 503} if fault.refuses_creates else {201}
    assert {a.status for a in recovery.answers} <= allowed, Counter(
        (a.status, a.message) for a in recovery.answers
    )
    slowest = max(a.seconds for a in recovery.answers)
    assert slowest < ANSWER_BOUND_S, f"an answer took {slowest:.2f}s"
    if fault.refuses_creates:
        assert any(a.status == 503 for a in recovery.during), "the fault never showed"
    lines = recovery.log_lines_during
    assert lines <= LOG_LINES_PER_OUTAGE_S * OUTAGE_S, Counter(complaints(server)).most_common(8)
    accepted = {a.job_id for a in recovery.answers if a.job_id is not None}
    runs = sum(read_ledgers(ledger_dir).values(), Counter())
    assert accepted <= set(runs), f"{len(accepted - set(runs))} accepted jobs never ran"
    twice = [job for job, n in runs.items() if n > 1]
    assert not twice, f"{len(twice)} jobs ran more than once, e.g. {twice[:3]}"
    stats = server.client.get("/api/jobs/stats").json()
    assert stats["failed"] == 0, stats
    print(
        f"{fault.name}: {len(recovery.answers)} creates, "
        f"{sum(a.status == 503 for a in recovery.answers)} answered 503, slowest {slowest:.2f}s; "
        f"{lines} warnings and errors logged in {OUTAGE_S:.0f}s of outage; creates accepted "
        f"{recovery.first_create_after_s:.2f}s and every job finished "
        f"{recovery.all_done_after_s:.2f}s after the dependency came back"
    )


@pytest.mark.timeout(120)
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGQUIT], ids=["restart", "crash"])
@pytest.mark.parametrize("mode", ["postgres", "redis"])
def test_postgres_goes_down_under_load(
    serve: ServeFactory, tmp_path: Path, mode: str, how: signal.Signals
) -> None:
    """SIGINT: a fast shutdown; SIGQUIT: an immediate one, recovered from the WAL at start."""
    ledger_dir, ledgers = ledger_dir_settings(tmp_path)
    settings = {**SETTINGS, **ledgers}
    with ExitStack() as stack:
        postgres = stack.enter_context(private_postgres())
        settings["DATABASE_URL"] = postgres.create_database("jobs")
        if mode == "redis":
            settings["REDIS_URL"] = stack.enter_context(private_redis()).url()
        server = serve(**settings)
        name = f"PostgreSQL {how.name} ({mode})"
        fault = Fault(name, lambda: postgres.stop(how), postgres.start, refuses_creates=True)
        check(server, fault, ledger_dir, ride_out(server, fault))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("fault_name", ["restart", "flushall"])
def test_redis_goes_down_or_is_flushed_under_load(
    serve: ServeFactory, tmp_path: Path, fault_name: str
) -> None:
    """The rows are the truth: creates go on; the reconciler re-enqueues what Redis lost."""
    ledger_dir, ledgers = ledger_dir_settings(tmp_path)
    settings = {**SETTINGS, **ledgers}
    with postgres_database() as url, private_redis() as server_redis:
        server = serve(**settings, DATABASE_URL=url, REDIS_URL=server_redis.url())
        if fault_name == "restart":
            fault = Fault("Redis restart", server_redis.stop, server_redis.start, False)
        else:
            flush = redis.Redis.from_url(server_redis.url())
            fault = Fault("Redis FLUSHALL", flush.flushall, lambda: None, False)
        check(server, fault, ledger_dir, ride_out(server, fault))


@contextmanager
def small_disk(path: Path, size: str = "16m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``path`` (needs root), unmounted afterwards."""
    path.mkdir()
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        check=False,
        capture_output=True,
    )
    if mount.returncode != 0:
        unavailable(f"cannot mount a small tmpfs (needs root): {mount.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(disk: Path) -> Path:
    """Write a file until the disk is full; returns it."""
    filler = disk / "filler"
    chunk = b"\0" * 65536
    with filler.open("wb", buffering=0) as file:
        for _ in range(100_000):
            try:
                file.write(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
    return filler


@pytest.mark.timeout(120)
def test_sqlite_disk_fills_up_under_load(serve: ServeFactory, tmp_path: Path) -> None:
    ledger_dir, ledgers = ledger_dir_settings(tmp_path)
    settings = {**SETTINGS, **ledgers}
    with small_disk(tmp_path / "disk") as disk:
        server = serve(**settings, DATABASE_URL=f"sqlite:///{disk / 'jobs.db'}")
        filler = disk / "filler"
        fault = Fault("SQLite disk full", lambda: fill(disk), filler.unlink, True)
        check(server, fault, ledger_dir, ride_out(server, fault))
        server.stop()
