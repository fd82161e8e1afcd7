"""Build domain objects for tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import orjson

from jobqueue.client.calls import Call
from jobqueue.domain.attempts import Attempt, attempt_of
from jobqueue.domain.jobs import Job, JobStatus, utcnow
from jobqueue.domain.outcome import Failed, Succeeded

T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)


def make_job(status: JobStatus = JobStatus.PENDING, **fields: Any) -> Job:
    """A job with sensible defaults; ``fields`` override any attribute."""
    values: dict[str, Any] = {
        "id": uuid4(),
        "type": "noop",
        "payload": {},
        "status": status,
        "attempts": 0,
        "max_attempts": 5,
        "next_run_at": None,
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(fields)
    return Job(**values)


def ended(job: Job, error: str | None = None) -> Attempt:
    """The history entry for ``job``'s current attempt: succeeded, or failed with ``error``."""
    outcome = Succeeded() if error is None else Failed(error)
    return attempt_of(job, outcome, utcnow())


def wire(value: Any) -> Any:
    """``value`` as the server writes it, read back as JSON."""
    return json.loads(orjson.dumps(value))


def body_of(call: Call[Any]) -> Any:
    """The JSON body a client call would send."""
    assert call.body is not None
    return json.loads(call.body)
