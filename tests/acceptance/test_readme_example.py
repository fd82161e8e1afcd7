"""The README's example, end to end, against the real ``jobqueue serve`` process."""

from __future__ import annotations

import re
import uuid
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from tests.support.serve import Json, ServeFactory, ServeProcess

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
JOB_KEYS = {"id", "type", "payload", "status", "attempts", "nextRunAt", "createdAt", "updatedAt"}
STATUSES = {"pending", "processing", "completed", "failed"}
EXAMPLE = {"type": "send-email", "payload": {"to": "user@example.com", "subject": "Welcome"}}


def assert_new_job_shape(job: Json) -> None:
    """The documented shape of a job just created."""
    assert job.keys() >= JOB_KEYS, job
    assert str(uuid.UUID(job["id"])) == job["id"], job
    assert job["type"] == EXAMPLE["type"]
    assert job["payload"] == EXAMPLE["payload"]
    assert (job["status"], job["attempts"], job["nextRunAt"]) == ("pending", 0, None), job
    assert TIMESTAMP.match(job["createdAt"]), job
    assert TIMESTAMP.match(job["updatedAt"]), job


def read_outbox(outbox: Path) -> list[EmailMessage]:
    """The ``.eml`` files in ``outbox``, parsed."""
    files = sorted(outbox.glob("*.eml")) if outbox.is_dir() else []
    return [message_from_bytes(path.read_bytes(), policy=policy.default) for path in files]


def test_readme_example_end_to_end(serve: ServeFactory, tmp_path: Path) -> None:
    server = serve()
    response = server.client.post("/api/jobs", json=EXAMPLE)
    assert response.status_code == 201, response.text
    created = response.json()
    assert_new_job_shape(created)

    done = server.wait_for_status(created["id"], "completed", attempts=1)
    assert TIMESTAMP.match(done["updatedAt"]), done
    assert done["createdAt"] == created["createdAt"]

    messages = read_outbox(tmp_path / "outbox")
    assert len(messages) == 1, f"expected one .eml in the outbox, found {len(messages)}"
    assert messages[0]["To"] == "user@example.com"
    assert messages[0]["Subject"] == "Welcome"

    stats = server.client.get("/api/jobs/stats")
    assert stats.status_code == 200, stats.text
    counts = stats.json()
    assert counts.keys() >= STATUSES, counts
    assert counts["completed"] == 1
    assert all(count == 0 for status, count in counts.items() if status != "completed"), counts


def test_startup_lines_and_health(serve: ServeFactory) -> None:
    server = serve()
    health = server.client.get("/health")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert_startup_lines(server)


def assert_startup_lines(server: ServeProcess) -> None:
    """The Node service's startup lines, as JSON log events."""
    events = server.log_events()
    workers = [e for e in events if e.get("event") == "Worker started"]
    assert len(workers) == 1, server.log_tail()
    assert workers[0].get("concurrency") == 5, workers[0]
    assert workers[0].get("queue"), workers[0]
    running = f"Server running at http://127.0.0.1:{server.port}"
    assert any(e.get("event") == running for e in events), server.log_tail()
