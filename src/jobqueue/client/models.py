"""What the client returns: frozen dataclasses with snake_case attributes, parsed from the
API's camelCase JSON.

Every parser checks the types it reads, so that an answer that is not the jobqueue API's
(a wrong URL, a proxy's error page) is a ``ProtocolError`` rather than a ``KeyError`` later.
Keys the Node service did not send (``maxAttempts``, ``result``, ...) may be absent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar
from uuid import UUID

from jobqueue.client.errors import ProtocolError
from jobqueue.domain.attempts import AttemptOutcome
from jobqueue.domain.jobs import JobStatus, OnParentFailure

__all__ = [
    "Attempt",
    "AttemptOutcome",
    "DeadLetter",
    "Flow",
    "FlowMember",
    "FlowStatus",
    "Job",
    "JobStatus",
    "OnParentFailure",
    "Schedule",
    "Stats",
]

E = TypeVar("E", bound=StrEnum)
R = TypeVar("R")
J = TypeVar("J", bound="Job")


@dataclass(frozen=True, slots=True)
class Job:
    """A job as the API returns it."""

    id: UUID
    type: str
    payload: dict[str, Any]
    status: JobStatus
    attempts: int
    """Attempts started so far (1 after a first-try success)."""
    next_run_at: datetime | None
    """When a pending job runs next (a delay or a retry's backoff); None: as soon as it can."""
    created_at: datetime
    updated_at: datetime
    max_attempts: int | None = None
    priority: int = 0
    """Lower runs first."""
    last_error: str | None = None
    result: Any = None
    """What the handler returned, once completed."""
    progress: int | None = None
    """0 to 100, as the running attempt last reported."""
    progress_message: str | None = None
    pending_parents: int | None = None
    """How many of the jobs it depends on have not finished yet (it is ``waiting`` while
    above 0); None for a job without parents."""
    on_parent_failure: OnParentFailure | None = None
    """What it does when a parent fails for good or is cancelled (None: a server without
    workflows)."""
    flow_id: UUID | None = None
    """The flow it was created in, if any."""


class FlowStatus(StrEnum):
    """Where a flow is, from its members' statuses."""

    ACTIVE = "active"
    """A member is waiting, pending or running."""
    COMPLETED = "completed"
    """Every member completed."""
    FAILED = "failed"
    """A member failed for good, and none is active."""
    CANCELLED = "cancelled"
    """None is active, none failed, and not all completed."""


@dataclass(frozen=True, slots=True)
class FlowMember(Job):
    """A job of a flow: the job, the ids of the jobs it waits for, and its key."""

    depends_on: tuple[UUID, ...] = ()
    """The ids of the members it waits for."""
    key: str | None = None
    """Its key in the request (``"0"``, ``"1"``, ... for a canvas): only in the answer to
    ``create_flow``; None in ``get_flow``'s and ``cancel_flow``'s."""


@dataclass(frozen=True, slots=True)
class Flow:
    """A flow: its state, how many members are in each status, and every member."""

    id: UUID
    status: FlowStatus
    counts: Mapping[str, int]
    """Members in each status (every status, 0 included)."""
    members: tuple[FlowMember, ...]

    def member(self, key: str) -> FlowMember:
        """The member created for ``key``: in a canvas, the jobs numbered from ``"0"`` in
        the order they were written."""
        for member in self.members:
            if member.key == key:
                return member
        raise KeyError(f"the flow has no member with key {key!r}")

    def member_by_id(self, job_id: UUID | str) -> FlowMember:
        """The member with id ``job_id``."""
        wanted = UUID(str(job_id))
        for member in self.members:
            if member.id == wanted:
                return member
        raise KeyError(f"job {wanted} is not a member of flow {self.id}")


@dataclass(frozen=True, slots=True)
class Attempt:
    """One finished attempt of a job."""

    number: int
    """1 for the first attempt."""
    worker: str | None
    started_at: datetime
    finished_at: datetime
    outcome: AttemptOutcome
    error: str | None
    duration_ms: float | None
    """The handler's run time; None when the attempt was lost."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A job that failed for good, as the dead-letter queue keeps it."""

    job_id: UUID
    type: str
    payload: dict[str, Any]
    reason: str
    attempts: int
    failed_at: datetime


@dataclass(frozen=True, slots=True)
class Schedule:
    """A recurring job: its type, its cron (UTC), its payload and its next run."""

    type: str
    cron: str
    payload: dict[str, Any]
    next_run_at: datetime


@dataclass(frozen=True, slots=True)
class Stats:
    """How many jobs are in each status."""

    pending: int
    processing: int
    completed: int
    failed: int
    cancelled: int = 0
    waiting: int = 0
    """Jobs waiting for the jobs they depend on (0 from a server without workflows)."""
    counts: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)
    """Every key the server sent, statuses added after this client included."""

    @property
    def total(self) -> int:
        """Jobs in any status (statuses only ``counts`` names included)."""
        if self.counts:
            return sum(self.counts.values())
        named = (self.pending, self.processing, self.completed, self.failed, self.cancelled)
        return sum(named) + self.waiting


class Fields:
    """Typed reads of one JSON object's fields; a missing or mistyped one is a ProtocolError."""

    def __init__(self, data: Any, what: str) -> None:
        """``what`` names the object in error messages (``job``, ``attempt``)."""
        if not isinstance(data, dict):
            raise ProtocolError(f"expected a JSON object for a {what}, got {_kind(data)}")
        self.data: dict[str, Any] = data
        self.what = what

    def get(self, name: str, kind: type[Any] | tuple[type[Any], ...], *, optional: bool) -> Any:
        """The field ``name`` if it has type ``kind`` (None too when ``optional``)."""
        if name not in self.data and not optional:
            raise ProtocolError(f"the {self.what} has no {name!r} field")
        value = self.data.get(name)
        if value is None and optional:
            return None
        if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
            raise ProtocolError(f"the {self.what}'s {name!r} is {_kind(value)}")
        return value

    def text(self, name: str) -> str:
        """A required string."""
        value: str = self.get(name, str, optional=False)
        return value

    def maybe_text(self, name: str) -> str | None:
        """An optional string."""
        value: str | None = self.get(name, str, optional=True)
        return value

    def integer(self, name: str) -> int:
        """A required integer."""
        value: int = self.get(name, int, optional=False)
        return value

    def maybe_integer(self, name: str) -> int | None:
        """An optional integer."""
        value: int | None = self.get(name, int, optional=True)
        return value

    def maybe_number(self, name: str) -> float | None:
        """An optional number."""
        value: float | None = self.get(name, (int, float), optional=True)
        return value

    def maybe_uuid(self, name: str) -> UUID | None:
        """An optional UUID."""
        text = self.maybe_text(name)
        return None if text is None else self._convert(name, UUID, text)

    def maybe_enum(self, name: str, kind: type[E]) -> E | None:
        """An optional member of the string enum ``kind``."""
        text = self.maybe_text(name)
        return None if text is None else self._convert(name, kind, text)

    def uuids(self, name: str) -> tuple[UUID, ...]:
        """A required array of UUIDs."""
        items: list[Any] = self.get(name, list, optional=False)
        if not all(isinstance(item, str) for item in items):
            raise ProtocolError(f"the {self.what}'s {name!r} holds something not a string")
        return tuple(self._convert(name, UUID, item) for item in items)

    def obj(self, name: str) -> dict[str, Any]:
        """A required JSON object."""
        value: dict[str, Any] = self.get(name, dict, optional=False)
        return value

    def uuid(self, name: str) -> UUID:
        """A required UUID, written as a string."""
        return self._convert(name, UUID, self.text(name))

    def time(self, name: str) -> datetime:
        """A required ISO 8601 time (``...Z``)."""
        return self._convert(name, datetime.fromisoformat, self.text(name))

    def maybe_time(self, name: str) -> datetime | None:
        """An optional ISO 8601 time."""
        text = self.maybe_text(name)
        return None if text is None else self._convert(name, datetime.fromisoformat, text)

    def enum(self, name: str, kind: type[E]) -> E:
        """A required member of the string enum ``kind``."""
        return self._convert(name, kind, self.text(name))

    def _convert(self, name: str, convert: Callable[[str], R], text: str) -> R:
        try:
            return convert(text)
        except ValueError as exc:
            raise ProtocolError(f"the {self.what}'s {name!r} is not valid: {text!r}") from exc


def parse_job(data: Any) -> Job:
    """A job from its JSON."""
    return _read_job(Fields(data, "job"), Job)


def parse_flow(data: Any) -> Flow:
    """A flow from its JSON: ``{id, status, counts, jobs}``."""
    f = Fields(data, "flow")
    jobs: list[Any] = f.get("jobs", list, optional=False)
    counts = f.obj("counts")
    if not all(isinstance(count, int) for count in counts.values()):
        raise ProtocolError(f"the flow's 'counts' are not all integers: {counts!r}")
    return Flow(
        id=f.uuid("id"),
        status=f.enum("status", FlowStatus),
        counts=counts,
        members=tuple(parse_flow_member(item) for item in jobs),
    )


def parse_flow_member(data: Any) -> FlowMember:
    """A member of a flow: a job with ``dependsOn`` and (in a create's answer) ``key``."""
    f = Fields(data, "flow member")
    return _read_job(f, FlowMember, depends_on=f.uuids("dependsOn"), key=f.maybe_text("key"))


def _read_job(f: Fields, kind: Callable[..., J], **extra: Any) -> J:
    """A ``Job`` (or subclass ``kind`` with the ``extra`` fields) from its fields."""
    return kind(
        id=f.uuid("id"),
        type=f.text("type"),
        payload=f.obj("payload"),
        status=f.enum("status", JobStatus),
        attempts=f.integer("attempts"),
        next_run_at=f.maybe_time("nextRunAt"),
        created_at=f.time("createdAt"),
        updated_at=f.time("updatedAt"),
        max_attempts=f.maybe_integer("maxAttempts"),
        priority=f.maybe_integer("priority") or 0,
        last_error=f.maybe_text("lastError"),
        result=f.data.get("result"),
        progress=f.maybe_integer("progress"),
        progress_message=f.maybe_text("progressMessage"),
        pending_parents=f.maybe_integer("pendingParents"),
        on_parent_failure=f.maybe_enum("onParentFailure", OnParentFailure),
        flow_id=f.maybe_uuid("flowId"),
        **extra,
    )


def parse_attempt(data: Any) -> Attempt:
    """One attempt from its JSON."""
    f = Fields(data, "attempt")
    return Attempt(
        number=f.integer("number"),
        worker=f.maybe_text("worker"),
        started_at=f.time("startedAt"),
        finished_at=f.time("finishedAt"),
        outcome=f.enum("outcome", AttemptOutcome),
        error=f.maybe_text("error"),
        duration_ms=f.maybe_number("durationMs"),
    )


def parse_dead_letter(data: Any) -> DeadLetter:
    """A dead-letter entry from its JSON."""
    f = Fields(data, "dead letter")
    return DeadLetter(
        job_id=f.uuid("jobId"),
        type=f.text("type"),
        payload=f.obj("payload"),
        reason=f.text("reason"),
        attempts=f.integer("attempts"),
        failed_at=f.time("failedAt"),
    )


def parse_schedule(data: Any) -> Schedule:
    """A recurring job from its JSON."""
    f = Fields(data, "schedule")
    return Schedule(
        type=f.text("type"),
        cron=f.text("cron"),
        payload=f.obj("payload"),
        next_run_at=f.time("nextRunAt"),
    )


def parse_stats(data: Any) -> Stats:
    """The counts per status from their JSON."""
    f = Fields(data, "stats")
    counts = {name: f.integer(name) for name in f.data}
    return Stats(
        pending=f.integer("pending"),
        processing=f.integer("processing"),
        completed=f.integer("completed"),
        failed=f.integer("failed"),
        cancelled=f.maybe_integer("cancelled") or 0,
        waiting=f.maybe_integer("waiting") or 0,
        counts=counts,
    )


def parse_retried(data: Any) -> int:
    """How many jobs ``retry-failed`` sent back, from ``{"retried": n}``."""
    return Fields(data, "retry-failed answer").integer("retried")


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
