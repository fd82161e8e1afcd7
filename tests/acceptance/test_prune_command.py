"""``jobqueue prune``: finished jobs deleted on demand, from the command line."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.serve import JOBQUEUE, ServeFactory, serve_env


def prune(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``jobqueue prune`` on the test's database, as an operator would."""
    return subprocess.run(
        [str(JOBQUEUE), "prune", *args],
        cwd=workdir,
        env=serve_env(workdir, {}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_prune_deletes_finished_jobs_and_keeps_the_rest(
    serve: ServeFactory, tmp_path: Path
) -> None:
    server = serve()
    done = server.create_job("noop")
    server.wait_for_status(done["id"], "completed")
    later = server.create_job("noop", runAt="2999-01-01T00:00:00Z")

    kept = prune(tmp_path)  # RETAIN_COMPLETED: a week
    assert kept.returncode == 0, kept.stderr
    assert "deleted 0 completed or cancelled jobs" in kept.stdout
    result = prune(tmp_path, "--older-than", "0")
    assert result.returncode == 0, result.stderr
    assert "deleted 1 completed or cancelled jobs that finished more than 0 ago" in result.stdout
    assert server.get_job(done["id"]).status_code == 404
    assert server.get_job(later["id"]).status_code == 200


def test_prune_says_what_a_duration_looks_like(tmp_path: Path) -> None:
    result = prune(tmp_path, "--older-than", "a week")
    assert result.returncode == 2
    said = " ".join(result.stderr.replace("│", " ").split())  # typer draws a box around it
    assert "--older-than" in said
    assert "is not a duration: write it like 7d, 12h, 30m, 90s or 0" in said
