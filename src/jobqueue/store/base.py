"""The store's interface: every read and write of jobs goes through it."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol
from uuid import UUID

from jobqueue.domain.attempts import Attempt
from jobqueue.domain.changes import Sweep, UpdatePlan
from jobqueue.domain.flows import Edge
from jobqueue.domain.jobs import DeadLetter, Job, JobFilter, JobStatus, JSONValue, ProgressReport
from jobqueue.domain.limits import TypeLimit


class StoreError(Exception):
    """Base of the errors every store raises on purpose."""


class DuplicateIdempotencyKeyError(StoreError):
    """Another job already holds this idempotency key."""


class UnstorableValueError(StoreError):
    """The database refused a value the request carried (HTTP 400, never 503): a bad
    request, not an outage."""


class TypeLimitReachedError(StoreError):
    """A job of a limited type cannot start now: its type's concurrency or rate is used up."""


class StoreUnavailableError(StoreError):
    """The database did not answer in time or refused the connection (HTTP 503)."""


class JobStore(Protocol):
    """Persistence of jobs and dead letters; the row is the source of truth."""

    async def insert(self, jobs: Sequence[Job]) -> list[Job]:
        """Insert new jobs in one transaction; a repeated idempotency key keeps the first job."""
        ...

    async def insert_with_parents(
        self, jobs: Sequence[Job], parents_of: Mapping[UUID, Sequence[UUID]]
    ) -> list[Job]:
        """Insert jobs that depend on others (``parents_of``: child id -> parent ids), with
        their edges, in one transaction. A parent outside ``jobs`` is marked
        ``has_dependants`` under a row lock, and its state then decides the child's
        (``flows.arrivals``): InvalidFlowError when it does not exist. Returns the jobs as
        inserted (waiting, pending or cancelled)."""
        ...

    async def due_children(self, parent_id: UUID) -> list[Job]:
        """The pending children of ``parent_id`` (those its outcome released), to publish."""
        ...

    async def parent_results(self, child_id: UUID) -> dict[UUID, JSONValue]:
        """Each parent of ``child_id`` with its result (None when it did not complete)."""
        ...

    async def flow(self, flow_id: UUID) -> tuple[list[Job], list[Edge]]:
        """The members of a flow, oldest first, and the edges of each (none: no such flow)."""
        ...

    async def cancel_flow(self, flow_id: UUID) -> list[Job]:
        """Cancel every member not yet finished (a running one keeps its lease until its
        worker stops it), passing the cancel on to their dependants; returns them."""
        ...

    async def get(self, job_id: UUID) -> Job | None:
        """One job, or None."""
        ...

    async def find_by_idempotency_keys(self, keys: Collection[str]) -> list[Job]:
        """The jobs created with any of these idempotency keys."""
        ...

    async def list_jobs(self, query: JobFilter) -> list[Job]:
        """Jobs matching the filter, newest first."""
        ...

    async def count_by_status(self) -> dict[JobStatus, int]:
        """How many jobs are in each status (absent statuses may be missing)."""
        ...

    async def apply(self, job_id: UUID, plan: UpdatePlan) -> Job | None:
        """Apply a planned change if the job is still in ``plan.expected_status``. A cancelled
        parent passes that on to its children, as a failure does; a retried one (failed to
        pending) makes the children its failure cancelled wait again."""
        ...

    async def oldest_due_pending(self, now: datetime) -> datetime | None:
        """When the longest-waiting pending job due by ``now`` became due (its
        ``next_run_at``, else its ``created_at``); None when no pending job is due."""
        ...

    async def apply_sweep(self, plan: UpdatePlan, sweep: Sweep) -> list[Job]:
        """Apply ``plan`` to the next ``sweep.limit`` jobs in ``plan.expected_status`` that
        ``sweep`` selects, in one transaction; the jobs it changed (a job whose status changed
        meanwhile is not among them)."""
        ...

    async def delete(self, job_id: UUID) -> Job | None:
        """Delete a job; returns what was deleted, or None when absent. A deleted parent's
        waiting children are cancelled naming it (or released, with ``continue``)."""
        ...

    async def claim(
        self, owner: str, limit: int, lease_until: datetime, types: Sequence[str] | None = None
    ) -> list[Job]:
        """Atomically take up to ``limit`` due pending jobs (of ``types``), starting an attempt."""
        ...

    async def start(
        self, job_id: UUID, owner: str, lease_until: datetime, due_by: datetime
    ) -> Job | None:
        """Start the next attempt of a pending job due by ``due_by`` (a pushing queue's
        delivery); None when it is not pending, not due yet, or gone."""
        ...

    async def claim_limited(
        self, owner: str, job_type: str, limit: TypeLimit, want: int, lease_until: datetime
    ) -> list[Job]:
        """As ``claim`` for one type, taking no more than ``limit`` leaves room for over all
        processes (checked and taken in one transaction under a lock of the type's)."""
        ...

    async def start_limited(
        self, job_id: UUID, owner: str, lease_until: datetime, due_by: datetime, limit: TypeLimit
    ) -> Job | None:
        """As ``start``, for a job of a type with ``limit``; TypeLimitReachedError when the
        limit leaves no room now."""
        ...

    async def renew(self, owner: str, job_ids: Sequence[UUID], lease_until: datetime) -> set[UUID]:
        """Extend the leases ``owner`` still holds; returns the ids it still holds."""
        ...

    async def complete(self, job: Job, attempt: Attempt, result: JSONValue = None) -> Job | None:
        """Record success with the handler's ``result`` and the ``attempt`` in the history,
        if ``job.lease_owner`` still holds the lease (else nothing is written). A parent's
        children whose last unfinished parent it was become pending in the same transaction."""
        ...

    async def schedule_retry(
        self, job: Job, run_at: datetime, error: str, attempt: Attempt
    ) -> Job | None:
        """Make a failed attempt pending again at ``run_at`` and add ``attempt`` to the
        history, if the lease is still held."""
        ...

    async def fail(
        self, job: Job, reason: str, attempt: Attempt, *, queue_pending: bool = False
    ) -> tuple[Job, DeadLetter] | None:
        """Fail for good, add ``attempt`` to the history and the dead-letter entry, if the
        lease is still held; ``queue_pending`` marks the entry as still to be written to the
        queue's own DLQ. A parent's waiting children are cancelled (or, with ``continue``,
        released) in the same transaction."""
        ...

    async def cancelled_among(self, job_ids: Sequence[UUID]) -> set[UUID]:
        """Those of ``job_ids`` that were cancelled (a worker checks the jobs it runs)."""
        ...

    async def end_cancelled(self, job: Job, attempt: Attempt) -> Job | None:
        """Add the last attempt of a job cancelled while it ran to its history and end the
        lease, if ``job.lease_owner`` holds it; None otherwise."""
        ...

    async def prune(self, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` completed or cancelled jobs last changed before ``before``,
        with their history, in one short transaction; how many were deleted. Failed jobs, dead
        letters, and parents of children not yet finished (their ``ctx.parent_results`` reads
        the parent's result) stay."""
        ...

    async def set_progress(self, reports: Sequence[ProgressReport]) -> None:
        """Store running attempts' progress, each only while its owner holds the lease."""
        ...

    async def attempts(self, job_id: UUID) -> list[Attempt] | None:
        """The finished attempts of a job, first to last; None when there is no such job."""
        ...

    async def queue_pending_dead_letters(self, limit: int) -> list[DeadLetter]:
        """Entries still to be written to the queue's own DLQ, oldest first."""
        ...

    async def dead_letter_queued(self, entry: DeadLetter) -> None:
        """``entry`` is on the queue's own DLQ now."""
        ...

    async def release(self, job: Job) -> Job | None:
        """Hand a job back unfinished, giving back the attempt it had started."""
        ...

    async def expired(self, now: datetime, limit: int) -> list[Job]:
        """Processing jobs whose lease ran out before ``now``."""
        ...

    async def next_run_at(self, types: Sequence[str] | None = None) -> datetime | None:
        """The earliest time a scheduled pending job (of ``types``) becomes due."""
        ...

    async def dead_letters(self, limit: int, offset: int) -> list[DeadLetter]:
        """Dead-letter entries, newest first."""
        ...

    def listen(self, on_notify: Callable[[], None]) -> AbstractAsyncContextManager[None]:
        """While open, call ``on_notify`` when another process makes a job pending."""
        ...

    async def ping(self) -> None:
        """Raise if the database does not answer."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
