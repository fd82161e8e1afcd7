"""Concurrency and rate limits of a job type hold over three worker processes at once."""

from __future__ import annotations

import itertools
from contextlib import ExitStack
from pathlib import Path

import pytest
from redis import Redis

from jobqueue.store.migrate import migrate
from tests.reliability.ledgers import ledger_dir_settings
from tests.reliability.test_flood import workers
from tests.services import postgres_database, private_redis
from tests.support.serve import running, wait_until

JOBS = 15
CONCURRENCY = 2
RATE = 5
"""The ``limited`` handler's own limits (``ledger_handlers.py``)."""
JITTER_S = 0.2
"""A start is written by the handler a moment after its claim: windows are this much shorter."""


def runs(ledger_dir: Path) -> dict[str, list[tuple[float, float]]]:
    """Per worker process: (start, end) of each run, in wall-clock seconds."""
    per_process: dict[str, list[tuple[float, float]]] = {}
    for path in ledger_dir.glob("*.ledger"):
        starts: dict[str, float] = {}
        spans = []
        for job_id, what, at in (line.split() for line in path.read_text().splitlines()):
            if what == "start":
                starts[job_id] = float(at)
            else:
                spans.append((starts.pop(job_id), float(at)))
        per_process[path.stem] = spans
    return per_process


def most_at_once(spans: list[tuple[float, float]]) -> int:
    """The largest number of spans open at one moment."""
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    return max(itertools.accumulate(step for _, step in events))


def most_started_within(spans: list[tuple[float, float]], window_s: float) -> int:
    """The largest number of starts inside any window of ``window_s``."""
    starts = sorted(start for start, _ in spans)
    return max(sum(1 for other in starts if first <= other < first + window_s) for first in starts)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", ["sqlite", "postgres", "redis"])
def test_limits_of_a_type_hold_over_three_worker_processes(tmp_path: Path, mode: str) -> None:
    ledger_dir, ledgers = ledger_dir_settings(tmp_path)
    with ExitStack() as stack:
        # One job at a time per process, none ahead: the limit of 2 needs two processes.
        one_each = {"WORKER_CONCURRENCY": "1", "WORKER_PREFETCH": "0", "WORKER_PREFETCH_MAX": "0"}
        settings = {**ledgers, **one_each, "JOB_POLL_INTERVAL_MS": "100", "LOG_LEVEL": "warning"}
        if mode != "sqlite":
            settings["DATABASE_URL"] = stack.enter_context(postgres_database())
        if mode == "redis":
            settings["REDIS_URL"] = stack.enter_context(private_redis()).url()
        migrate(settings.get("DATABASE_URL", f"sqlite:///{tmp_path / 'jobs.db'}"))
        procs = stack.enter_context(workers(tmp_path, settings))
        api = stack.enter_context(running(tmp_path, {**settings, "LOG_LEVEL": "info"}, "api"))
        body = {"jobs": [{"type": "limited"} for _ in range(JOBS)]}
        assert api.client.post("/api/jobs/batch", json=body).status_code == 201

        def all_completed() -> bool:
            assert all(proc.poll() is None for proc in procs), "a worker process died"
            return bool(api.client.get("/api/jobs/stats").json()["completed"] == JOBS)

        wait_until(all_completed, 60, f"{JOBS} completed jobs", interval=0.2)
    per_process = runs(ledger_dir)
    spans = [span for process in per_process.values() for span in process]
    assert len(spans) == JOBS
    assert sum(1 for process in per_process.values() if process) >= 2, "one process ran all"
    at_once, started = most_at_once(spans), most_started_within(spans, 1.0 - JITTER_S)
    print(f"{mode}: {len(per_process)} processes ran jobs, {at_once} at once, {started} started")
    assert at_once <= CONCURRENCY
    assert started <= RATE


BACKLOG = 40


@pytest.mark.timeout(120)
def test_a_rate_limited_backlog_is_held_back_about_once_a_job_in_redis_mode(
    tmp_path: Path,
) -> None:
    """BullMQ delivers a backlog without knowing the type's rate: each job held back comes
    back in its turn, spaced at that rate, rather than the whole backlog every half second
    (380 hand-backs for this one before, each a Redis move and a database query)."""
    _ledger_dir, ledgers = ledger_dir_settings(tmp_path)
    with ExitStack() as stack:
        settings = {**ledgers, "LOG_LEVEL": "warning"}
        settings["DATABASE_URL"] = stack.enter_context(postgres_database())
        redis_url = stack.enter_context(private_redis()).url()
        settings["REDIS_URL"] = redis_url
        migrate(settings["DATABASE_URL"])
        server = stack.enter_context(running(tmp_path, settings))
        body = {"jobs": [{"type": "limited"} for _ in range(BACKLOG)]}
        assert server.client.post("/api/jobs/batch", json=body).status_code == 201

        def all_completed() -> bool:
            return bool(server.client.get("/api/jobs/stats").json()["completed"] == BACKLOG)

        wait_until(all_completed, 60, f"{BACKLOG} completed jobs", interval=0.2)
        events = Redis.from_url(redis_url).xrange("bull:job-queue:events") or []
    held_back = sum(1 for _id, fields in events if fields and fields[b"event"] == b"delayed")
    print(f"{held_back} hand-backs for a backlog of {BACKLOG} at {RATE} a second")
    assert held_back < 2 * BACKLOG
