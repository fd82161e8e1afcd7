"""The operator commands (``jobqueue jobs|dlq|enqueue``) run as subprocesses against a real
``jobqueue serve``."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from jobqueue.client import Client, JobStatus
from tests.support.client_server import API_KEY, serve_in_mode, wait_for_status
from tests.support.serve import JOBQUEUE, ServeProcess, free_port, serve_env

CLI_TIMEOUT_S = 30


class Cli:
    """Runs ``jobqueue`` commands with JOBQUEUE_URL and JOBQUEUE_API_KEY set for a server."""

    def __init__(self, workdir: Path, url: str, api_key: str | None = API_KEY) -> None:
        self.workdir = workdir
        self.env = serve_env(workdir, {"JOBQUEUE_URL": url, "COLUMNS": "200"})
        if api_key is not None:
            self.env["JOBQUEUE_API_KEY"] = api_key

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``jobqueue *args`` (stdin is not a terminal) and return what it did."""
        return subprocess.run(
            [str(JOBQUEUE), *args],
            cwd=self.workdir,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_S,
            check=False,
        )

    def ok(self, *args: str) -> str:
        """The stdout of a command that must succeed."""
        done = self.run(*args)
        assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
        return done.stdout

    def json(self, *args: str) -> Any:
        """The parsed stdout of a command run with ``--json``."""
        return json.loads(self.ok(*args, "--json"))

    def fails(self, code: int, *args: str) -> str:
        """The one-line stderr of a command that must exit with ``code``, printing nothing."""
        done = self.run(*args)
        assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
        assert done.stdout == ""
        assert "Traceback" not in done.stderr
        lines = done.stderr.splitlines()
        assert len(lines) == 1, done.stderr
        return lines[0]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    with serve_in_mode("sqlite", tmp_path_factory.mktemp("server")) as process:
        yield process


@pytest.fixture
def cli(server: ServeProcess, tmp_path: Path) -> Cli:
    return Cli(tmp_path, server.base_url)


@pytest.fixture
def client(server: ServeProcess) -> Iterator[Client]:
    with Client(server.base_url, api_key=API_KEY) as jobs:
        yield jobs


def test_enqueue_then_list_and_show_the_job(cli: Cli, client: Client) -> None:
    marker = str(uuid4())
    line = cli.ok("enqueue", "client-echo", "--payload", json.dumps({"m": marker}))
    job_id = line.split()[1]
    assert line == f"job {job_id} (client-echo) enqueued: pending\n"
    wait_for_status(client, job_id, JobStatus.COMPLETED)
    table = cli.ok("jobs", "list", "--type", "client-echo")
    assert job_id in table
    assert "completed" in table
    listed = cli.json("jobs", "list", "--type", "client-echo", "--status", "completed")
    assert job_id in [job["id"] for job in listed]
    shown = cli.ok("jobs", "show", job_id)
    assert job_id in shown
    assert marker in shown
    assert "succeeded" in shown  # the attempts table
    job = cli.json("jobs", "show", job_id)
    assert (job["id"], job["payload"], job["result"], job["status"]) == (
        job_id,
        {"m": marker},
        {"m": marker},
        "completed",
    )


def test_enqueue_options_and_json(cli: Cli) -> None:
    job = cli.json(
        "enqueue", "client-later", "--delay-ms", "3600000", "--max-attempts", "2",
        "--priority", "4", "--idempotency-key", "cli-key",
    )  # fmt: skip
    assert (job["status"], job["maxAttempts"], job["priority"]) == ("pending", 2, 4)
    assert job["nextRunAt"] is not None
    again = cli.json("enqueue", "client-later", "--delay-ms", "3600000", "--max-attempts", "2",
                     "--priority", "4", "--idempotency-key", "cli-key")  # fmt: skip
    assert again["id"] == job["id"]


def test_cancel_delete_and_stats(cli: Cli, client: Client) -> None:
    job = client.create("client-later", delay=timedelta(hours=1))
    before = cli.json("jobs", "stats")
    assert set(before) >= {"pending", "processing", "completed", "failed", "cancelled", "waiting"}
    assert (
        cli.ok("jobs", "cancel", str(job.id))
        == f"job {job.id} (client-later) cancelled: cancelled\n"
    )
    after = cli.json("jobs", "stats")
    assert (after["pending"], after["cancelled"]) == (
        before["pending"] - 1,
        before["cancelled"] + 1,
    )
    assert "cancelled" in cli.ok("jobs", "stats")
    conflict = cli.fails(1, "jobs", "cancel", str(job.id))
    assert "409" in conflict
    assert "current status: cancelled" in conflict
    assert cli.json("jobs", "delete", str(job.id)) == {"deleted": str(job.id)}
    assert cli.fails(1, "jobs", "delete", str(job.id)) == (
        f"error: no job {job.id} at {cli.env['JOBQUEUE_URL']} (404)"
    )


def test_dead_letters_are_listed_and_retried(cli: Cli, client: Client) -> None:
    job = client.create("client-fail")
    wait_for_status(client, job.id, JobStatus.FAILED)
    assert str(job.id) in cli.ok("dlq", "list")
    assert str(job.id) in [entry["jobId"] for entry in cli.json("dlq", "list")]
    assert cli.ok("dlq", "retry", str(job.id)).endswith("sent back to pending: pending\n")
    wait_for_status(client, job.id, JobStatus.FAILED)
    assert cli.json("jobs", "retry", str(job.id))["status"] == "pending"
    wait_for_status(client, job.id, JobStatus.FAILED)
    refused = cli.fails(2, "jobs", "retry-failed", "--type", "client-fail")
    assert "pass --yes" in refused
    assert cli.ok("jobs", "retry-failed", "--type", "client-fail", "--yes") == (
        "1 failed jobs sent back to pending\n"
    )
    wait_for_status(client, job.id, JobStatus.FAILED)
    assert cli.json("jobs", "retry-failed", "--type", "client-fail", "--yes") == {"retried": 1}


def test_a_server_that_is_down_is_one_line_and_exit_1(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    cli = Cli(tmp_path, url)
    for command in (("jobs", "list"), ("jobs", "stats"), ("dlq", "list"), ("enqueue", "noop")):
        line = cli.fails(1, *command)
        assert line.startswith(f"error: cannot reach jobqueue at {url}: ")
        assert line.endswith("is `jobqueue serve` running?")


def test_a_wrong_or_missing_key_is_one_line_and_exit_1(
    server: ServeProcess, tmp_path: Path
) -> None:
    for key in ("wrong-key", None):
        line = Cli(tmp_path, server.base_url, api_key=key).fails(1, "jobs", "stats")
        assert line.startswith(f"error: jobqueue at {server.base_url} refused the API key (401")
        assert "JOBQUEUE_API_KEY" in line


def test_url_and_api_key_options_win_over_the_environment(
    server: ServeProcess, tmp_path: Path
) -> None:
    cli = Cli(tmp_path, f"http://127.0.0.1:{free_port()}", api_key="wrong-key")
    stats = cli.json("jobs", "stats", "--url", server.base_url, "--api-key", API_KEY)
    assert "pending" in stats


def test_bad_input_is_one_line_and_exit_2(cli: Cli) -> None:
    assert cli.fails(2, "enqueue", "noop", "--payload", "{not json").startswith(
        "error: --payload is not valid JSON: "
    )
    assert cli.fails(2, "enqueue", "noop", "--payload", "[1, 2]") == (
        'error: --payload must be a JSON object, like {"to": "a@example.com"}, not [1, 2]'
    )
    unknown = cli.fails(1, "enqueue", "no-such-type")
    assert "400" in unknown
    assert "client-echo" in unknown  # the server names the known types
    assert "valid UUID" in cli.fails(1, "jobs", "show", "not-a-uuid")
