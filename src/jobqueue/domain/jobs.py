"""The job record and its lifecycle, with no I/O."""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, NamedTuple
from uuid import UUID, uuid4


class JobStatus(enum.StrEnum):
    """Where a job is in its lifecycle."""

    PENDING = "pending"
    """Waiting to run: new, scheduled for later, or waiting for its next retry."""
    PROCESSING = "processing"
    """Claimed by a worker that holds its lease and is running its handler."""
    COMPLETED = "completed"
    """The handler succeeded. Final."""
    FAILED = "failed"
    """Attempts exhausted or a permanent error; a dead-letter entry exists. Can be retried."""
    CANCELLED = "cancelled"
    """Withdrawn before it ran (or stopped while it ran). Final, except for a job cancelled
    because a parent failed: retrying that parent makes it wait again."""
    WAITING = "waiting"
    """Waiting for the jobs it depends on (``dependsOn``) to complete; never claimed. It
    becomes pending in the transaction that completes its last parent."""


class OnParentFailure(enum.StrEnum):
    """What a job does when a job it depends on fails for good or is cancelled."""

    CANCEL = "cancel"
    """It is cancelled too, with a reason naming that parent (the default)."""
    CONTINUE = "continue"
    """That parent counts as finished: the job runs once its other parents are done."""


JSONObject = dict[str, Any]
JSONValue = Any
"""Any JSON value (None is JSON null)."""


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Job:
    """One job as the store holds it: the source of truth."""

    id: UUID
    type: str
    payload: JSONObject
    status: JobStatus
    attempts: int
    max_attempts: int
    next_run_at: datetime | None
    created_at: datetime
    updated_at: datetime
    priority: int = 0
    last_error: str | None = None
    idempotency_key: str | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    result: JSONValue = None
    """What the handler returned on success (None: nothing, or not completed)."""
    request_fingerprint: str | None = None
    """With an idempotency key: a digest of the request that created the job, so that the
    same key sent with another request is told apart."""
    progress: int | None = None
    """0 to 100, as the running attempt's handler last reported it; None before it does."""
    progress_message: str | None = None
    """What the handler said with its last progress report."""
    pending_parents: int | None = None
    """None: the job depends on no other job. Otherwise how many of its parents have not
    finished yet (0 once it may run)."""
    has_dependants: bool = False
    """Another job depends on this one: its outcome must be passed on (the fan-in step).
    False for most jobs, which then pay nothing for workflows when they finish."""
    flow_id: UUID | None = None
    """The flow (``POST /api/flows``) this job was created in, if any."""
    flow_key: str | None = None
    """The job's key in its flow's request (a graph's own key, a chain's index, a tree's
    path such as ``0.1``)."""
    on_parent_failure: OnParentFailure = OnParentFailure.CANCEL
    """What it does when a parent fails for good or is cancelled."""
    cancelled_by_parent: UUID | None = None
    """The parent whose failure or cancel cancelled this job: retrying it re-arms this job."""


class CompletionRead(NamedTuple):
    """What a completion reads back of the stored row: what the worker's copy may lack."""

    progress: int | None
    progress_message: str | None
    has_dependants: bool
    """A dependant may have been added since the worker claimed the job."""


def completed(job: Job, result: JSONValue, at: datetime, read: CompletionRead) -> Job:
    """The held ``job`` as its completion at ``at`` stores it (the stores read back only
    ``read``, not the whole row)."""
    return replace(
        job,
        status=JobStatus.COMPLETED,
        result=result,
        lease_owner=None,
        lease_expires_at=None,
        updated_at=at,
        progress=read.progress,
        progress_message=read.progress_message,
        has_dependants=bool(read.has_dependants),
    )


@lru_cache(maxsize=4096)
def iso_ms(moment: datetime) -> str:
    """UTC ISO 8601 with milliseconds and ``Z``, as JavaScript's ``toISOString`` (and so the
    Node service, on its API and its queues) writes times.

    Cached: a job's times are mostly one moment (a new job's created, updated and due
    times; every job of a batch), and formatting costs 15 times a look-up.
    """
    # isoformat of a UTC time ends in "+00:00"; it truncates to milliseconds, as JavaScript does.
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def request_fingerprint(request: Mapping[str, Any]) -> str:
    """A digest of a create request's fields (its idempotency key left out): equal for the
    same request sent again, whatever the order of its keys."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def job_fields(job: Job) -> dict[str, str | int]:
    """The fields every log line about a job carries."""
    return {"job_id": str(job.id), "job_type": job.type, "attempt": job.attempts}


@dataclass(frozen=True, slots=True)
class ProgressReport:
    """How far a running attempt has come, as its handler said."""

    job_id: UUID
    owner: str | None
    """The lease owner running it: a report from a worker that lost the lease is dropped."""
    percent: int
    message: str | None = None


@dataclass(frozen=True, slots=True)
class NewJob:
    """What a client asks for when it creates a job."""

    type: str
    payload: JSONObject = field(default_factory=dict)
    run_at: datetime | None = None
    priority: int = 0
    max_attempts: int | None = None
    idempotency_key: str | None = None
    request_fingerprint: str | None = None
    """A digest of the request as the client sent it (see ``Job.request_fingerprint``)."""
    depends_on: tuple[UUID, ...] = ()
    """Existing jobs that must complete before this one runs."""
    on_parent_failure: OnParentFailure = OnParentFailure.CANCEL
    """What it does when one of them fails for good or is cancelled."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A job that failed for good, as the Node service wrote it to its DLQ."""

    job_id: UUID
    type: str
    payload: JSONObject
    reason: str
    attempts: int
    failed_at: datetime

    @classmethod
    def of_failed(cls, job: Job, reason: str) -> DeadLetter:
        """The entry for ``job``, just failed for good (``updated_at`` is when it failed)."""
        return cls(job.id, job.type, job.payload, reason, job.attempts, job.updated_at)


@dataclass(frozen=True, slots=True)
class JobFilter:
    """The list query: optional status and type, newest first, paged."""

    status: JobStatus | None = None
    type: str | None = None
    limit: int = 100
    offset: int = 0


def build_job(new: NewJob, now: datetime, default_max_attempts: int) -> Job:
    """The pending row a create request makes: the API's creates and ``jobqueue.enqueue``
    both build it here. ``default_max_attempts`` is the type's limit when ``new`` sets none."""
    return Job(
        id=uuid4(),
        type=new.type,
        payload=new.payload,
        status=JobStatus.PENDING,
        attempts=0,
        max_attempts=new.max_attempts or default_max_attempts,
        next_run_at=new.run_at,
        created_at=now,
        updated_at=now,
        priority=new.priority,
        idempotency_key=new.idempotency_key,
        request_fingerprint=new.request_fingerprint,
        on_parent_failure=new.on_parent_failure,
    )


def is_same_request(made_by: str | None, new: NewJob) -> bool:
    """Whether ``new`` is the request that made a job whose fingerprint is ``made_by`` (both
    with the same idempotency key); jobs made before fingerprints were kept, or without
    one, are taken as the same."""
    asked = new.request_fingerprint
    return made_by is None or asked is None or made_by == asked


@dataclass(frozen=True, slots=True)
class QueueState:
    """The queue at one moment, for monitoring."""

    counts: dict[str, int]
    """Jobs in each status (every status, zero included)."""
    oldest_pending_age_s: float
    """How long the longest-waiting pending job that is due has waited: since its
    ``next_run_at`` when it was scheduled, else since it was created; 0 when none is due."""
