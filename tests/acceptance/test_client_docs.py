"""The README's client, workflow and operator CLI examples, and docs/client.md's, run as
written against a real ``jobqueue serve``. The README's client and workflow examples are also
the modules ``client_example.py`` and ``flows_example.py`` beside this test, so that mypy
checks them with the tests."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from jobqueue.client import Client, JobStatus
from tests.acceptance.test_docs_examples import readme_block
from tests.support.client_server import HANDLERS_DIR, wait_for_status
from tests.support.serve import JOBQUEUE, running

CLIENT_DOC = Path(__file__).resolve().parents[2] / "docs" / "client.md"
WORKFLOWS_DOC = CLIENT_DOC.with_name("workflows.md")
CLIENT_EXAMPLE = Path(__file__).with_name("client_example.py")
FLOWS_EXAMPLE = Path(__file__).with_name("flows_example.py")
EXAMPLE_TIMEOUT_S = 30


def run_example(argv: list[str], workdir: Path, url: str) -> str:
    """Run an example in ``workdir`` with JOBQUEUE_URL set; return its stdout."""
    env = {"PATH": f"{JOBQUEUE.parent}:/usr/bin:/bin", "JOBQUEUE_URL": url, "NO_PROXY": "*"}
    done = subprocess.run(
        argv,
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=EXAMPLE_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    return done.stdout


def test_the_readme_shows_the_client_example_that_is_type_checked_and_run() -> None:
    assert readme_block("<!-- client-example:start -->", "python") == CLIENT_EXAMPLE.read_text()


def test_the_readme_client_example_prints_what_its_comments_say(tmp_path: Path) -> None:
    with running(tmp_path / "server") as server:
        printed = run_example([sys.executable, str(CLIENT_EXAMPLE)], tmp_path, server.base_url)
    assert printed.splitlines() == ["completed 1", "1", "404 Job not found"]
    (eml,) = (tmp_path / "server" / "outbox").glob("*.eml")
    assert "Subject: Welcome" in eml.read_text()


def test_the_readme_shows_the_flows_example_that_is_type_checked_and_run() -> None:
    assert readme_block("<!-- flows-example:start -->", "python") == FLOWS_EXAMPLE.read_text()


def test_the_readme_flows_example_prints_what_its_comments_say(tmp_path: Path) -> None:
    with running(tmp_path / "server") as server:
        printed = run_example([sys.executable, str(FLOWS_EXAMPLE)], tmp_path, server.base_url)
    assert printed.splitlines() == [
        "waiting 2",
        "completed 3",
        "['outbox', 'outbox']",
        "2",
    ]
    mails = (tmp_path / "server" / "outbox").glob("*.eml")
    lines = [line for mail in mails for line in mail.read_text().splitlines()]
    # the cancelled chain's e-mail to c@example.com was never sent
    assert sorted(line for line in lines if line.startswith("To: ")) == [
        "To: a@example.com",
        "To: b@example.com",
    ]


def test_the_readme_operator_example_runs(tmp_path: Path) -> None:
    script = readme_block("<!-- operator-example:start -->", "sh")
    with running(tmp_path / "server", {"JOB_BACKOFF_MS": "60000"}) as server:
        printed = run_example(["bash", "-eu", "-c", script], tmp_path, server.base_url)
    enqueued = re.match(r"job (\S+) \(send-email\) enqueued: pending\n", printed)
    assert enqueued, printed
    assert printed.count(enqueued.group(1)) >= 2  # the line, and the table or the JSON
    assert "completed" in printed  # the stats table


def doc_example(name: str, doc: Path = CLIENT_DOC) -> str:
    """The python block between ``<!-- name:start -->`` and its end in ``doc``."""
    pattern = rf"<!-- {name}:start -->\n```python\n(.*?)```\n<!-- {name}:end -->"
    match = re.search(pattern, doc.read_text(), re.DOTALL)
    assert match, f"{doc.name} has no {name}"
    return match.group(1)


def test_the_python_example_of_docs_workflows_md_prints_what_it_says(tmp_path: Path) -> None:
    example = doc_example("python-flows-example", WORKFLOWS_DOC)
    handlers = {"JOBQUEUE_HANDLERS": "order_handlers", "PYTHONPATH": str(HANDLERS_DIR)}
    with running(tmp_path / "server", handlers) as server:
        printed = run_example([sys.executable, "-c", example], tmp_path, server.base_url)
        with Client(server.base_url) as jobs:
            (closed,) = jobs.list_jobs(type="close-order")
            done = wait_for_status(jobs, closed.id, JobStatus.COMPLETED)
    assert printed.splitlines() == ["close-order waiting 2"]
    assert done.result == {"closed_after": 2}


def test_the_examples_of_docs_client_md_print_what_their_comments_say(tmp_path: Path) -> None:
    with running(tmp_path / "server") as server:
        errors = run_example(
            [sys.executable, "-c", doc_example("errors-example")], tmp_path, server.base_url
        )
        printed = run_example(
            [sys.executable, "-c", doc_example("async-example")], tmp_path, server.base_url
        )
        flows = run_example(
            [sys.executable, "-c", doc_example("flows-example")], tmp_path, server.base_url
        )
    assert errors.splitlines() == [
        "404 Job not found",
        "409 Only pending, waiting or running jobs can be cancelled (current status: completed)",
    ]
    assert printed.splitlines() == ["3 jobs created", json.dumps({"pending": 3})]
    assert flows.splitlines() == ["active waiting 3", "4", "cancelled cancelled"]
