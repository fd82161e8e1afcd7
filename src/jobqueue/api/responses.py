"""Response bodies, built once from the domain objects and serialized by orjson.

The pydantic models in ``schemas`` describe these shapes for OpenAPI only: a response is
neither validated nor converted through them (the dictionaries below are what goes out).
Key order and formats follow ``JobOut`` and ``DeadLetterOut``, the Node service's order.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import orjson
from starlette.responses import Response

from jobqueue.domain.attempts import Attempt
from jobqueue.domain.jobs import DeadLetter, Job, iso_ms
from jobqueue.domain.schedules import Schedule


def job_json(job: Job) -> dict[str, Any]:
    """A job on the wire (orjson writes the UUID and the status enum as strings)."""
    return {
        "id": job.id,
        "type": job.type,
        "payload": job.payload,
        "status": job.status,
        "attempts": job.attempts,
        "nextRunAt": None if job.next_run_at is None else iso_ms(job.next_run_at),
        "createdAt": iso_ms(job.created_at),
        "updatedAt": iso_ms(job.updated_at),
        "maxAttempts": job.max_attempts,
        "priority": job.priority,
        "lastError": job.last_error,
        "result": job.result,
        "progress": job.progress,
        "progressMessage": job.progress_message,
        "pendingParents": job.pending_parents,
        "onParentFailure": job.on_parent_failure,
        "flowId": job.flow_id,
    }


def attempt_json(attempt: Attempt) -> dict[str, Any]:
    """One finished attempt on the wire (``AttemptOut``)."""
    return {
        "number": attempt.number,
        "worker": attempt.worker,
        "startedAt": iso_ms(attempt.started_at),
        "finishedAt": iso_ms(attempt.finished_at),
        "outcome": attempt.outcome,
        "error": attempt.error,
        "durationMs": attempt.duration_ms,
    }


def schedule_json(schedule: Schedule, next_run_at: datetime) -> dict[str, Any]:
    """A recurring job on the wire (``ScheduleOut``)."""
    return {
        "type": schedule.job_type,
        "cron": schedule.cron,
        "payload": schedule.payload,
        "nextRunAt": iso_ms(next_run_at),
    }


def dead_letter_json(entry: DeadLetter) -> dict[str, Any]:
    """A dead-letter entry on the wire: the Node service's DLQ job data."""
    return {
        "jobId": entry.job_id,
        "type": entry.type,
        "payload": entry.payload,
        "reason": entry.reason,
        "attempts": entry.attempts,
        "failedAt": iso_ms(entry.failed_at),
    }


def json_response(content: Any, status_code: int = 200) -> Response:
    """``content`` as an ``application/json`` response."""
    return Response(dumps(content), status_code, media_type="application/json")


def dumps(content: Any) -> bytes:
    """Compact UTF-8 JSON."""
    try:
        return orjson.dumps(content)
    except orjson.JSONEncodeError:
        # orjson refuses integers beyond 64 bits, lone surrogates and nesting deeper than 254
        # levels, which a payload stored other than through this API (jobqueue.enqueue) may
        # hold; the standard library writes all three (the surrogates escaped).
        return json.dumps(content, separators=(",", ":"), default=str).encode()
