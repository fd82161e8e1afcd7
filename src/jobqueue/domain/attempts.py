"""One attempt of a job, as its history keeps it."""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from jobqueue.domain.jobs import Job, JSONObject
from jobqueue.domain.outcome import Outcome, Succeeded


class AttemptOutcome(enum.StrEnum):
    """How an attempt ended."""

    SUCCEEDED = "succeeded"
    """The handler returned; the job completed."""
    FAILED = "failed"
    """The handler raised or timed out (the job's status says whether it is retried)."""
    LOST = "lost"
    """Its worker stopped (crash, kill, lost connection) and the lease ran out."""
    CANCELLED = "cancelled"
    """The job was cancelled while this attempt ran."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """A finished attempt: who ran it, when, for how long, and how it ended."""

    job_id: UUID
    number: int
    """1 for the first attempt."""
    worker: str | None
    """The lease owner that ran it (host, process, random part)."""
    started_at: datetime
    finished_at: datetime
    outcome: AttemptOutcome
    error: str | None = None
    duration_ms: float | None = None
    """The handler's own run time; None for a lost attempt."""


def attempt_of(job: Job, outcome: Outcome, finished_at: datetime) -> Attempt:
    """The history entry of ``job``'s current attempt, which came to ``outcome``."""
    succeeded = isinstance(outcome, Succeeded)
    return Attempt(
        job_id=job.id,
        number=job.attempts,
        worker=job.lease_owner,
        started_at=outcome.started_at or job.updated_at,  # the claim set updated_at
        finished_at=finished_at,
        outcome=AttemptOutcome.SUCCEEDED if succeeded else AttemptOutcome.FAILED,
        error=None if isinstance(outcome, Succeeded) else outcome.error,
        duration_ms=outcome.duration_ms,
    )


def cancelled_attempt(attempt: Attempt) -> Attempt:
    """``attempt``, which ended after its job was cancelled, as the history keeps it."""
    return dataclasses.replace(attempt, outcome=AttemptOutcome.CANCELLED)


def lost_attempt(job: Job, error: str, finished_at: datetime) -> Attempt:
    """The history entry of an attempt whose worker stopped before it said how it went."""
    return Attempt(
        job_id=job.id,
        number=job.attempts,
        worker=job.lease_owner,
        started_at=job.updated_at,
        finished_at=finished_at,
        outcome=AttemptOutcome.LOST,
        error=error,
    )


def attempt_record(attempt: Attempt) -> JSONObject:
    """``attempt`` as its job row's history keeps it: one JSON object (ISO times)."""
    return {
        "number": attempt.number,
        "worker": attempt.worker,
        "startedAt": attempt.started_at.isoformat(),
        "finishedAt": attempt.finished_at.isoformat(),
        "outcome": attempt.outcome.value,
        "error": attempt.error,
        "durationMs": attempt.duration_ms,
    }


def attempt_from_record(job_id: UUID, record: JSONObject) -> Attempt:
    """The attempt a history record (``attempt_record``) of job ``job_id`` describes."""
    return Attempt(
        job_id=job_id,
        number=record["number"],
        worker=record["worker"],
        started_at=datetime.fromisoformat(record["startedAt"]),
        finished_at=datetime.fromisoformat(record["finishedAt"]),
        outcome=AttemptOutcome(record["outcome"]),
        error=record["error"],
        duration_ms=record["durationMs"],
    )
