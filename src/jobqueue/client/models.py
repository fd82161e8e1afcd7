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
from jobqueue.domain.jobs import JobStatus

__all__ = [
    "Attempt",
    "AttemptOutcome",
    "DeadLetter",
    "Job",
    "JobStatus",
    "Schedule",
    "Stats",
]

E = TypeVar("E", bound=StrEnum)
R = TypeVar("R")


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
    counts: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)
    """Every key the server sent, statuses added after this client included."""

    @property
    def total(self) -> int:
        """Jobs in any status (statuses only ``counts`` names included)."""
        if self.counts:
            return sum(self.counts.values())
        return self.pending + self.processing + self.completed + self.failed + self.cancelled


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
    f = Fields(data, "job")
    return Job(
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
        counts=counts,
    )


def parse_retried(data: Any) -> int:
    """How many jobs ``retry-failed`` sent back, from ``{"retried": n}``."""
    return Fields(data, "retry-failed answer").integer("retried")


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
