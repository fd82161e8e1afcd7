"""Which changes a client may make to a job in each state, and what the queue must do."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from uuid import UUID

from jobqueue.domain.errors import InvalidJobError, InvalidTransitionError, RetryNotAllowedError
from jobqueue.domain.jobs import Job, JobStatus


class QueueAction(enum.Enum):
    """What the queue must do so that it agrees with the row after a change."""

    NONE = "none"
    """The row changed in a way the queue does not see."""
    ENQUEUE = "enqueue"
    """The job is (again) pending: put its trigger on the queue, at its nextRunAt."""
    WITHDRAW = "withdraw"
    """The job must not run: remove its trigger from the queue."""


@dataclass(frozen=True, slots=True)
class JobChanges:
    """A PATCH: each field is optional; ``next_run_at_given`` tells null from absent."""

    status: JobStatus | None = None
    attempts: int | None = None
    next_run_at: datetime | None = None
    next_run_at_given: bool = False

    def is_empty(self) -> bool:
        """True when the request names no field at all."""
        return self.status is None and self.attempts is None and not self.next_run_at_given


@dataclass(frozen=True, slots=True)
class UpdatePlan:
    """The row's new values, the state the update requires, and the queue's part."""

    expected_status: JobStatus
    status: JobStatus
    attempts: int
    next_run_at: datetime | None
    action: QueueAction


_BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)
_LOWEST_ID = UUID(int=0)


@dataclass(frozen=True, slots=True)
class Sweep:
    """One batch of a change made to many jobs (retry-failed): up to ``limit`` jobs of
    ``job_type`` (None: any) created by ``created_by``, next in (created_at, id) order after
    the cursor. The cursor only moves forward, so one sweep changes each job at most once even
    when a job it changed comes back to the status it looks for."""

    job_type: str | None
    created_by: datetime
    limit: int
    after_created: datetime = _BEGINNING
    """The cursor: the created_at of the last job of the previous batch."""
    after_id: UUID = _LOWEST_ID
    """The cursor's tie-break: that job's id."""

    def past(self, batch: Sequence[Job]) -> Sweep:
        """The next batch's sweep: its cursor after the last job of ``batch`` (not empty)."""
        last = max(batch, key=lambda job: (job.created_at, job.id))
        return replace(self, after_created=last.created_at, after_id=last.id)


_FINAL = frozenset({JobStatus.COMPLETED, JobStatus.CANCELLED})

RETRY = UpdatePlan(JobStatus.FAILED, JobStatus.PENDING, 0, None, QueueAction.ENQUEUE)
"""What a manual retry does: a failed job goes back to pending, due now, attempts reset.
``plan_retry`` gives it for one job; retry-failed applies it to every failed job."""


def plan_retry(job: Job) -> UpdatePlan:
    """A manual retry: only a failed job goes back to pending, with attempts reset."""
    if job.status is not JobStatus.FAILED:
        raise RetryNotAllowedError(
            f"Only failed jobs can be retried (current status: {job.status.value})"
        )
    return RETRY


def plan_cancel(job: Job) -> UpdatePlan:
    """Cancel a job that has not finished. A pending one's trigger is withdrawn; a running one
    keeps its lease: its worker sees the cancel, stops the handler and records the attempt."""
    if job.status in (JobStatus.PROCESSING, JobStatus.WAITING):
        # Neither has a trigger to withdraw: a waiting job is not on the queue yet.
        return UpdatePlan(job.status, JobStatus.CANCELLED, job.attempts, None, QueueAction.NONE)
    if job.status is not JobStatus.PENDING:
        raise InvalidTransitionError(
            "Only pending, waiting or running jobs can be cancelled "
            f"(current status: {job.status.value})"
        )
    return UpdatePlan(job.status, JobStatus.CANCELLED, job.attempts, None, QueueAction.WITHDRAW)


def plan_update(job: Job, changes: JobChanges) -> UpdatePlan:
    """Check a PATCH against the job's state and say what it does to the row and the queue."""
    if changes.is_empty():
        raise InvalidJobError("body must name at least one of status, attempts, nextRunAt")
    if job.status is JobStatus.PROCESSING or job.status in _FINAL:
        raise InvalidTransitionError(f"A {job.status.value} job cannot be changed")

    target = changes.status or job.status
    if job.status is JobStatus.WAITING and target is not JobStatus.CANCELLED:
        raise InvalidTransitionError(
            "A waiting job runs when the jobs it depends on complete; it can only be cancelled"
        )
    if target is JobStatus.CANCELLED and job.status in (JobStatus.PENDING, JobStatus.WAITING):
        _forbid_fields_with_cancel(changes)
        return plan_cancel(job)
    if target not in (JobStatus.PENDING, JobStatus.FAILED):
        raise InvalidTransitionError(
            f"Cannot change status from {job.status.value} to {target.value}"
        )
    if target is JobStatus.FAILED and job.status is JobStatus.PENDING:
        raise InvalidTransitionError("Cannot change status from pending to failed")
    return _plan_field_changes(job, changes, target)


def _forbid_fields_with_cancel(changes: JobChanges) -> None:
    if changes.attempts is not None or changes.next_run_at_given:
        raise InvalidJobError("a cancel cannot also change attempts or nextRunAt")


def _plan_field_changes(job: Job, changes: JobChanges, target: JobStatus) -> UpdatePlan:
    reviving = job.status is JobStatus.FAILED and target is JobStatus.PENDING
    default_attempts = 0 if reviving else job.attempts
    attempts = default_attempts if changes.attempts is None else changes.attempts
    if target is JobStatus.PENDING and attempts >= job.max_attempts:
        raise InvalidJobError(
            f"attempts must be below maxAttempts ({job.max_attempts}) for a pending job"
        )
    if target is JobStatus.FAILED and changes.next_run_at_given:
        raise InvalidTransitionError("nextRunAt can only be set on a pending job")
    next_run_at = changes.next_run_at if changes.next_run_at_given else job.next_run_at
    if reviving and not changes.next_run_at_given:
        next_run_at = None
    action = QueueAction.ENQUEUE if target is JobStatus.PENDING else QueueAction.NONE
    return UpdatePlan(job.status, target, attempts, next_run_at, action)
