"""A worker host cut off from PostgreSQL mid-run, in a network namespace of its own.

Its jobs are recovered by another worker once their lease runs out, and when the link comes
back the cut-off worker's late outcomes are refused by the lease check: every job completes
once, none is lost, and the worker goes on taking jobs.
"""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from jobqueue.store.migrate import migrate
from tests.reliability.ledgers import ledger_dir_settings, ledger_of
from tests.services import private_postgres
from tests.support.netns import isolated_host
from tests.support.serve import JOBQUEUE, ServeFactory, serve_env, wait_until

JOBS = 5
SLOW_S = 3.0
"""How long each job of the cut-off worker takes: it finishes while the link is cut."""
SETTINGS = {
    "JOB_LEASE_MS": "2000",
    "JOB_BACKOFF_MS": "100",
    "DB_TIMEOUT_MS": "1000",
}


@contextmanager
def worker(
    workdir: Path, name: str, settings: dict[str, str], prefix: list[str]
) -> Iterator[subprocess.Popen[bytes]]:
    """``jobqueue worker`` (inside ``prefix``, a namespace), stopped with SIGTERM on exit."""
    with (workdir / f"{name}.log").open("wb") as log:
        argv = [*prefix, str(JOBQUEUE), "worker"]
        env = serve_env(workdir, settings)
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 15 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.mark.timeout(180)
def test_a_worker_cut_off_loses_its_jobs_to_another_and_none_completes_twice(
    serve: ServeFactory, tmp_path: Path
) -> None:
    ledger_dir, ledgers = ledger_dir_settings(tmp_path)
    settings = {**SETTINGS, **ledgers}
    with ExitStack() as stack:
        guest = stack.enter_context(isolated_host())
        postgres = stack.enter_context(private_postgres(listen=("127.0.0.1", guest.host_ip)))
        url = postgres.create_database("jobs")
        migrate(url)
        api = serve("api", **settings, DATABASE_URL=url)
        remote = {**settings, "DATABASE_URL": url.replace("127.0.0.1", guest.host_ip)}
        cut_off = stack.enter_context(worker(tmp_path, "cut-off", remote, guest.command([])))

        ids = [api.create_job("ledger-slow", {"seconds": SLOW_S})["id"] for _ in range(JOBS)]
        wait_until(
            lambda: set(ledger_of(ledger_dir, cut_off.pid)) == set(ids), 30, "the cut-off to start"
        )
        guest.cut()
        with worker(tmp_path, "other", {**settings, "DATABASE_URL": url}, []) as other:
            done = [api.wait_for_status(i, "completed", timeout=40) for i in ids]
            assert [job["attempts"] for job in done] == [2] * JOBS, done
            assert ledger_of(ledger_dir, other.pid) == Counter(ids)  # each rerun once, here

            guest.mend()
            cut_off_log = tmp_path / "cut-off.log"

            def refused() -> bool:
                text = cut_off_log.read_text()
                lines = [line for line in text.splitlines() if "outcome dropped" in line]
                return all(any(i in line for line in lines) for i in ids)

            wait_until(refused, 40, "the late outcomes to be refused", state=cut_off_log.read_text)
        assert ledger_of(ledger_dir, cut_off.pid) == Counter(ids)  # the first attempt of each
        assert [api.get_job(i).json()["status"] for i in ids] == ["completed"] * JOBS

        # Only the cut-off worker is left: it reconnected and runs new jobs.
        later = [api.create_job("ledger")["id"] for _ in range(3)]
        for job_id in later:
            api.wait_for_status(job_id, "completed", timeout=30)
        assert set(later) <= set(ledger_of(ledger_dir, cut_off.pid))
        assert cut_off.poll() is None, "the cut-off worker died"
