"""10,000 jobs over three worker processes on one PostgreSQL: every job runs exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from jobqueue.store.migrate import migrate
from tests.reliability.ledgers import ledger_dir_settings, read_ledgers
from tests.services import postgres_database, private_redis
from tests.support.serve import running, serve_env, wait_until

JOBS = 10_000
BATCH = 1_000
WORKERS = 3
JOBQUEUE = Path(sys.executable).with_name("jobqueue")


@contextmanager
def workers(workdir: Path, settings: dict[str, str]) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``WORKERS`` ``jobqueue worker`` processes; stopped with SIGTERM (then SIGKILL) on exit."""
    procs = []
    for n in range(WORKERS):
        log = (workdir / f"worker-{n}.log").open("wb")
        env = serve_env(workdir, settings)
        procs.append(subprocess.Popen([str(JOBQUEUE), "worker"], env=env, stdout=log, stderr=log))
    try:
        yield procs
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def create_all(client: httpx.Client) -> set[str]:
    """Create ``JOBS`` ledger jobs through the batch endpoint; returns their ids."""
    ids: set[str] = set()
    for _ in range(JOBS // BATCH):
        body = {"jobs": [{"type": "ledger", "payload": {}} for _ in range(BATCH)]}
        response = client.post("/api/jobs/batch", json=body, timeout=60)
        assert response.status_code == 201, response.text
        ids.update(job["id"] for job in response.json())
    return ids


@pytest.mark.timeout(300)
@pytest.mark.parametrize("mode", ["postgres", "redis"])
def test_ten_thousand_jobs_run_exactly_once_over_three_workers(tmp_path: Path, mode: str) -> None:
    ledger_dir, ledger_settings = ledger_dir_settings(tmp_path)
    with ExitStack() as stack:
        url = stack.enter_context(postgres_database())
        migrate(url)
        redis = {"REDIS_URL": stack.enter_context(private_redis()).url()} if mode == "redis" else {}
        settings = {
            **redis,
            **ledger_settings,
            "DATABASE_URL": url,
            "WORKER_CONCURRENCY": "10",
            "LOG_LEVEL": "warning",
        }
        procs = stack.enter_context(workers(tmp_path, settings))
        api = stack.enter_context(running(tmp_path, {**settings, "LOG_LEVEL": "info"}, "api"))
        started = time.monotonic()
        created = create_all(api.client)

        def all_completed() -> bool:
            assert all(proc.poll() is None for proc in procs), "a worker process died"
            return bool(api.client.get("/api/jobs/stats").json()["completed"] == JOBS)

        wait_until(
            all_completed,
            240,
            f"{JOBS} completed jobs",
            interval=0.5,
            state=lambda: api.client.get("/api/jobs/stats").json(),
        )
        elapsed = time.monotonic() - started
    ledgers = read_ledgers(ledger_dir)
    runs = sum(ledgers.values(), Counter())
    assert set(runs) == created
    assert max(runs.values()) == 1, [job for job, n in runs.items() if n > 1][:5]
    assert len(ledgers) == WORKERS, "every worker process should have taken part"
    print(
        f"{JOBS} jobs over {WORKERS} workers in {elapsed:.1f}s; per worker: "
        f"{sorted(sum(c.values()) for c in ledgers.values())}; pid env {os.getpid()}"
    )
