"""What the application asks to enqueue, validated exactly as ``POST /api/jobs`` validates it."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from jobqueue.api.schemas import CreateJobBody
from jobqueue.domain.errors import InvalidJobError
from jobqueue.domain.jobs import NewJob
from jobqueue.domain.json_values import unstorable


@dataclass(frozen=True, slots=True)
class JobRequest:
    """One job to enqueue: the fields of ``POST /api/jobs``, with Python's names and types."""

    type: str
    """The job type (1 to 100 characters): the handler that will run it."""
    payload: Mapping[str, Any] = field(default_factory=dict)
    """The handler's input: a JSON object."""
    run_at: datetime | None = None
    """Run no earlier than this (timezone-aware); not with ``delay``."""
    delay: timedelta | None = None
    """Run no earlier than this long after the enqueue (0 to 366 days); not with ``run_at``."""
    priority: int = 0
    """Lower runs first (-1,000,000 to 1,000,000)."""
    max_attempts: int | None = None
    """Attempts before the job fails for good (1 to 100); None: the type's limit."""
    idempotency_key: str | None = None
    """A key (1 to 255 characters) that makes a repeated enqueue return the first job."""


def new_jobs(requests: Iterable[JobRequest]) -> list[NewJob]:
    """The domain requests; InvalidJobError naming the field of the first invalid one."""
    return [_new_job(request) for request in requests]


def _new_job(request: JobRequest) -> NewJob:
    if not isinstance(request.payload, Mapping):
        kind = type(request.payload).__name__
        raise InvalidJobError(f"payload: must be a mapping (a JSON object), not {kind}")
    payload = dict(request.payload)
    _check_storable(payload)
    try:
        body = CreateJobBody(
            type=request.type,
            payload=payload,
            run_at=request.run_at,
            delay_ms=None if request.delay is None else _milliseconds(request.delay),
            priority=request.priority,
            max_attempts=request.max_attempts,
            idempotency_key=request.idempotency_key,
        )
    except ValidationError as exc:
        raise InvalidJobError(_message(exc)) from exc
    return body.to_new_job()


def _check_storable(payload: dict[str, Any]) -> None:
    """The rules a JSON body meets once the API has parsed it (no NaN, no U+0000, no
    integer beyond 64 bits), and JSON itself (a ``datetime`` is not JSON)."""
    problem = unstorable(payload)
    if problem is not None:
        path, reason = problem
        raise InvalidJobError("/".join(["payload", *map(str, path)]) + f": {reason}")
    try:
        json.dumps(payload)
    except (TypeError, ValueError) as exc:
        raise InvalidJobError(f"payload: not JSON: {exc}") from exc


def _milliseconds(delay: timedelta) -> int:
    return delay // timedelta(milliseconds=1)


def _message(exc: ValidationError) -> str:
    """Each invalid field by its Python name, e.g. ``max_attempts: Input should be ...``."""
    parts = []
    for error in exc.errors():
        name = "/".join(_snake(str(step)) for step in error["loc"]) or "request"
        parts.append(f"{name}: {error['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def _snake(name: str) -> str:
    """The API's camelCase field as this module's argument (``delayMs`` is ``delay`` here)."""
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower().replace("delay_ms", "delay")


@functools.cache
def _settings_max_attempts() -> int:
    """JOB_MAX_ATTEMPTS as the application's environment (or ``.env``) sets it."""
    from jobqueue.config import Settings

    return Settings().job_max_attempts


def default_max_attempts(job_type: str) -> int:
    """What the API would store for a job that sets no limit: the limit of the type's handler
    when it is registered in this process, otherwise JOB_MAX_ATTEMPTS."""
    from jobqueue.handlers.registry import registry

    registered = registry.get(job_type)
    own = None if registered is None else registered.policy.max_attempts
    return own or _settings_max_attempts()
