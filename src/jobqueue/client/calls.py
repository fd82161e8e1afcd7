"""Every API call as data: the request to send and how to read its answer, with no I/O.

``Client`` and ``AsyncClient`` only send a ``Call`` (with retries) and hand the answer to
``read_answer``; everything about the wire (paths, camelCase, idempotency keys, error bodies)
lives here and in ``models``.
"""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Generic, Literal, TypeVar
from urllib.parse import quote
from uuid import UUID

from jobqueue.client.errors import ApiError, ProtocolError, error_class
from jobqueue.client.models import (
    Attempt,
    DeadLetter,
    Flow,
    Job,
    JobStatus,
    OnParentFailure,
    Schedule,
    Stats,
    parse_attempt,
    parse_dead_letter,
    parse_flow,
    parse_job,
    parse_retried,
    parse_schedule,
    parse_stats,
)

T = TypeVar("T")
JobId = UUID | str
FlowId = UUID | str
MAX_PAGE_SIZE = 500
"""The API's largest ``limit``."""


class Auto(enum.Enum):
    """The type of ``AUTO``."""

    AUTO = "auto"
    """Let the client choose (a fresh uuid4 idempotency key)."""


class Unset(enum.Enum):
    """The type of ``UNSET``."""

    UNSET = "unset"
    """Leave the field as it is."""


AUTO: Final = Auto.AUTO
"""``idempotency_key=AUTO`` (the default): the client sends a fresh uuid4 key."""
UNSET: Final = Unset.UNSET
"""An ``update`` field left as it is (``None`` is a value: ``next_run_at=None`` runs now)."""
IdempotencyKey = str | None | Literal[Auto.AUTO]
"""A key of your own, ``AUTO`` for a fresh one, or ``None`` to send none (then a create that
loses its answer is not sent again)."""
ParentFailure = OnParentFailure | Literal["cancel", "continue"]
"""``"cancel"`` (the server's default) or ``"continue"``, as text or ``OnParentFailure``."""


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request and the parser of its successful answer."""

    method: str
    path: str
    parse: Callable[[Any], T]
    params: Mapping[str, str | int] = field(default_factory=dict)
    body: bytes | None = None
    """JSON, already encoded."""
    headers: Mapping[str, str] = field(default_factory=dict)
    repeatable: bool = False
    """Sending it twice does what sending it once does, so a lost answer may be retried."""

    def request_headers(self) -> dict[str, str]:
        """The call's own headers, with the body's content type when it has a body."""
        if self.body is None:
            return dict(self.headers)
        return {"Content-Type": "application/json", **self.headers}


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One job to create: the fields of ``POST /api/jobs``."""

    type: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    run_at: datetime | None = None
    """Run no earlier than this (a timezone-aware time)."""
    delay: timedelta | None = None
    """Run no earlier than this long after the server receives it (not with ``run_at``)."""
    priority: int | None = None
    """Lower runs first (the server's default: 0)."""
    max_attempts: int | None = None
    """Attempts before it fails for good (the server's default: JOB_MAX_ATTEMPTS)."""
    idempotency_key: IdempotencyKey = AUTO
    depends_on: Sequence[JobId] = ()
    """Ids of existing jobs that must complete first; until then the job is ``waiting``."""
    on_parent_failure: ParentFailure | None = None
    """When a parent fails for good or is cancelled: ``"cancel"`` this job too (the server's
    default) or ``"continue"`` and run it anyway."""

    def __post_init__(self) -> None:
        # One id passed bare would otherwise be sent as a list of its characters.
        if isinstance(self.depends_on, str | UUID):
            raise TypeError("depends_on takes a list of job ids, not one id")
        object.__setattr__(self, "depends_on", tuple(self.depends_on))

    def body(self) -> dict[str, Any]:
        """The JSON body, without the idempotency key; only the fields given."""
        body: dict[str, Any] = {"type": self.type, "payload": dict(self.payload)}
        if self.run_at is not None:
            body["runAt"] = _iso(self.run_at, "run_at")
        if self.delay is not None:
            body["delayMs"] = round(self.delay.total_seconds() * 1000)
        if self.priority is not None:
            body["priority"] = self.priority
        if self.max_attempts is not None:
            body["maxAttempts"] = self.max_attempts
        if self.depends_on:
            body["dependsOn"] = [str(job_id) for job_id in self.depends_on]
        if self.on_parent_failure is not None:
            body["onParentFailure"] = str(self.on_parent_failure)
        return body

    def key(self) -> str | None:
        """The idempotency key to send: the caller's, a fresh one, or none."""
        return str(uuid.uuid4()) if self.idempotency_key is AUTO else self.idempotency_key


def create(spec: JobSpec) -> Call[Job]:
    """``POST /api/jobs``: the key goes in the ``Idempotency-Key`` header."""
    key = spec.key()
    headers = {} if key is None else {"Idempotency-Key": key}
    body = encode(spec.body())
    return Call("POST", "/api/jobs", parse_job, body=body, headers=headers, repeatable=bool(key))


def create_many(specs: Sequence[JobSpec]) -> Call[list[Job]]:
    """``POST /api/jobs/batch``: each job carries its own ``idempotencyKey``."""
    if not specs:
        raise ValueError("create_many needs at least one job")
    items = [_with_key(spec.body(), spec.key()) for spec in specs]
    repeatable = all("idempotencyKey" in item for item in items)
    body = encode({"jobs": items})
    return Call("POST", "/api/jobs/batch", list_of(parse_job), body=body, repeatable=repeatable)


def create_flow(body: Mapping[str, Any]) -> Call[Flow]:
    """``POST /api/flows`` with a body in one of its shapes (a tree, ``steps`` or ``jobs``).

    Not repeatable: the API takes no idempotency key for a flow, so a flow whose answer was
    lost could have been created; it is sent again only when the request never left."""
    if not isinstance(body, Mapping):
        raise TypeError(f"a flow is a canvas or a JSON object, not {type(body).__name__}")
    return Call("POST", "/api/flows", parse_flow, body=encode(dict(body)))


def get_flow(flow_id: FlowId) -> Call[Flow]:
    """``GET /api/flows/:id``."""
    return Call("GET", flow_path(flow_id), parse_flow, repeatable=True)


def cancel_flow(flow_id: FlowId) -> Call[Flow]:
    """``POST /api/flows/:id/cancel``: repeatable, as a second cancel finds nothing left to
    cancel and answers the same flow."""
    return Call("POST", f"{flow_path(flow_id)}/cancel", parse_flow, repeatable=True)


def get(job_id: JobId) -> Call[Job]:
    """``GET /api/jobs/:id``."""
    return Call("GET", job_path(job_id), parse_job, repeatable=True)


def list_jobs(
    status: JobStatus | str | None = None,
    type: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Call[list[Job]]:
    """``GET /api/jobs``: newest first."""
    params: dict[str, str | int] = {"limit": limit, "offset": offset}
    if status is not None:
        params["status"] = str(status)
    if type is not None:
        params["type"] = type
    return Call("GET", "/api/jobs", list_of(parse_job), params=params, repeatable=True)


def stats() -> Call[Stats]:
    """``GET /api/jobs/stats``."""
    return Call("GET", "/api/jobs/stats", parse_stats, repeatable=True)


def attempts(job_id: JobId) -> Call[list[Attempt]]:
    """``GET /api/jobs/:id/attempts``."""
    return Call("GET", f"{job_path(job_id)}/attempts", list_of(parse_attempt), repeatable=True)


def retry(job_id: JobId) -> Call[Job]:
    """``POST /api/jobs/:id/retry``."""
    return Call("POST", f"{job_path(job_id)}/retry", parse_job)


def cancel(job_id: JobId) -> Call[Job]:
    """``POST /api/jobs/:id/cancel``."""
    return Call("POST", f"{job_path(job_id)}/cancel", parse_job)


def delete(job_id: JobId) -> Call[None]:
    """``DELETE /api/jobs/:id`` (204, no body)."""
    return Call("DELETE", job_path(job_id), _nothing)


def update(
    job_id: JobId,
    status: JobStatus | str | None = None,
    attempts: int | None = None,
    next_run_at: datetime | Unset | None = UNSET,
) -> Call[Job]:
    """``PATCH /api/jobs/:id`` with the fields given."""
    body: dict[str, Any] = {}
    if status is not None:
        body["status"] = str(status)
    if attempts is not None:
        body["attempts"] = attempts
    if not isinstance(next_run_at, Unset):
        body["nextRunAt"] = None if next_run_at is None else _iso(next_run_at, "next_run_at")
    if not body:
        raise ValueError("update needs at least one of status, attempts, next_run_at")
    return Call("PATCH", job_path(job_id), parse_job, body=encode(body))


def dead_letters(limit: int = 100, offset: int = 0) -> Call[list[DeadLetter]]:
    """``GET /api/dlq``: newest first."""
    params: dict[str, str | int] = {"limit": limit, "offset": offset}
    return Call("GET", "/api/dlq", list_of(parse_dead_letter), params=params, repeatable=True)


def schedules() -> Call[list[Schedule]]:
    """``GET /api/schedules``."""
    return Call("GET", "/api/schedules", list_of(parse_schedule), repeatable=True)


def retry_failed(type: str | None = None) -> Call[int]:
    """``POST /api/jobs/retry-failed``: every failed job (of ``type``) back to pending."""
    body = encode({} if type is None else {"type": type})
    return Call("POST", "/api/jobs/retry-failed", parse_retried, body=body)


def read_answer(call: Call[T], status: int, content: bytes) -> T:
    """The parsed answer of ``call``; an error answer raises its ``ApiError``."""
    if status >= 400:
        raise api_error(status, content)
    if status == 204:
        return call.parse(None)
    try:
        data = json.loads(content)
    except ValueError as exc:
        raise ProtocolError(f"the answer to {call.method} {call.path} is not JSON", status) from exc
    return call.parse(data)


def api_error(status: int, content: bytes) -> ApiError:
    """The exception for an error answer: its ``message`` and ``error`` when it has them."""
    try:
        data = json.loads(content)
    except ValueError:
        data = None
    cls = error_class(status)
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return cls(data["message"], status, str(data.get("error") or ""))
    text = content.decode("utf-8", "replace").strip()[:200]
    return cls(text or f"HTTP {status}", status)


def encode(body: Any) -> bytes:
    """Strict JSON (``NaN`` refused, as the server would), UTF-8."""
    return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def job_path(job_id: JobId) -> str:
    """``/api/jobs/<id>``, the id escaped (a non-UUID one is the server's 400 to give)."""
    return f"/api/jobs/{quote(str(job_id), safe='')}"


def flow_path(flow_id: FlowId) -> str:
    """``/api/flows/<id>``, the id escaped."""
    return f"/api/flows/{quote(str(flow_id), safe='')}"


def list_of(parse: Callable[[Any], T]) -> Callable[[Any], list[T]]:
    """A parser of a JSON array of what ``parse`` reads."""

    def parse_all(data: Any) -> list[T]:
        if not isinstance(data, list):
            raise ProtocolError(f"expected a JSON array, got {type(data).__name__}")
        return [parse(item) for item in data]

    return parse_all


def _with_key(body: dict[str, Any], key: str | None) -> dict[str, Any]:
    return body if key is None else {**body, "idempotencyKey": key}


def _iso(moment: datetime, name: str) -> str:
    if moment.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware (for example datetime.now(UTC))")
    return moment.isoformat()


def _nothing(_data: Any) -> None:
    return None
