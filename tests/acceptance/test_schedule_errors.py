"""A schedule ``serve`` cannot keep stops it at start, saying what to do."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.serve import JOBQUEUE, free_port, serve_env


def start(workdir: Path, schedules: str) -> subprocess.CompletedProcess[str]:
    """``jobqueue serve`` with SCHEDULES, expected to exit at once."""
    return subprocess.run(
        [str(JOBQUEUE), "serve", "--port", str(free_port())],
        cwd=workdir,
        env=serve_env(workdir, {"SCHEDULES": schedules}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_schedule_of_a_type_without_a_handler_stops_serve(tmp_path: Path) -> None:
    result = start(tmp_path, "nope=*/5 * * * *")
    assert result.returncode == 2
    assert "a schedule names job type 'nope', which has no handler here" in result.stderr
    assert "JOBQUEUE_HANDLERS" in result.stderr


def test_a_schedule_that_is_not_cron_stops_serve(tmp_path: Path) -> None:
    result = start(tmp_path, "noop=every day")
    assert result.returncode == 2
    said = " ".join(result.stderr.replace("│", " ").split())  # typer draws a box around it
    assert "'every day' is not a cron expression" in said
