"""The operator CLI's pieces without a server: messages, JSON output, tables, --payload."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
import typer
from rich.console import Console

from jobqueue.api.responses import job_json
from jobqueue.client import (
    AuthError,
    ConflictError,
    ConnectError,
    NotFoundError,
    ProtocolError,
)
from jobqueue.client.models import Stats, parse_job, parse_stats
from jobqueue.ops_cli import actions, output
from jobqueue.ops_cli.explain import explain
from tests.unit.factories import T0, make_job, wire

URL = "http://jobs.test"


def test_explain_says_what_to_do_in_one_line() -> None:
    down = ConnectError(f"cannot reach jobqueue at {URL}: refused", URL)
    assert explain(down, URL) == (
        f"cannot reach jobqueue at {URL}: refused — is `jobqueue serve` running?"
    )
    key = explain(AuthError("Missing or invalid API key", 401, "Unauthorized"), URL)
    assert key.startswith(f"jobqueue at {URL} refused the API key (401: Missing or invalid")
    assert explain(NotFoundError("Job not found", 404), URL, "abc") == f"no job abc at {URL} (404)"
    conflict = ConflictError("cannot cancel", 409, "Conflict")
    assert explain(conflict, URL) == f"jobqueue at {URL} answered 409 Conflict: cannot cancel"
    assert explain(ProtocolError("not JSON"), URL) == (
        f"{URL} did not answer like a jobqueue server: not JSON"
    )


def test_json_output_is_the_apis_json() -> None:
    job = make_job(payload={"a": 1}, next_run_at=T0 + timedelta(seconds=1), result=[1])
    sent = wire(job_json(job))
    assert output.wire(parse_job(sent)) == sent
    assert output.wire(Stats(1, 2, 3, 4, 0, counts={"pending": 1})) == {"pending": 1}


def test_the_stats_table_shows_waiting_jobs() -> None:
    counts = {"pending": 1, "processing": 0, "completed": 2, "failed": 0, "cancelled": 0}
    stats = parse_stats({**counts, "waiting": 7})
    console = Console(width=80, record=True)
    console.print(output.stats_table(stats))
    text = console.export_text()
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in text.splitlines()]
    assert ["waiting", "7"] in rows
    assert "10 jobs" in text


def test_a_job_table_shows_data_as_text_not_markup() -> None:
    job = parse_job(wire(job_json(make_job(type="[bold]odd[/bold]", last_error="[red]x"))))
    console = Console(width=200, record=True)
    console.print(output.jobs_table([job]))
    text = console.export_text()
    assert str(job.id) in text
    assert "[bold]odd[/bold]" in text
    assert "[red]x" in text


def test_a_narrow_job_table_keeps_the_id_whole_and_leaves_out_the_times() -> None:
    job = parse_job(wire(job_json(make_job())))
    console = Console(width=80, record=True)
    console.print(output.jobs_table([job], wide=False))
    text = console.export_text()
    assert str(job.id) in text
    assert "created" not in text


def test_payload_must_be_a_json_object(capsys: pytest.CaptureFixture[str]) -> None:
    assert actions.parse_payload('{"to": "a@example.com"}') == {"to": "a@example.com"}
    for bad in ("{oops", "[1]", "null"):
        with pytest.raises(typer.Exit) as exited:
            actions.parse_payload(bad)
        assert exited.value.exit_code == actions.USAGE
    assert len(capsys.readouterr().err.splitlines()) == 3


def test_the_jobqueue_command_does_not_load_the_client_until_an_operator_command_runs() -> None:
    probe = (
        "import sys, jobqueue.cli; print('httpx' in sys.modules, 'jobqueue.client' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.split() == ["False", "False"]
