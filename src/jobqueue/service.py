"""Use cases: every change a client asks for, and every attempt's outcome, goes through here,
so row and queue stay consistent. Consumers only take, renew and give back leases
(``queue.base.Leases``); what an attempt came to is recorded here."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta
from uuid import UUID, uuid4

import structlog

from jobqueue.domain.attempts import Attempt, attempt_of, cancelled_attempt, lost_attempt
from jobqueue.domain.changes import (
    RETRY,
    JobChanges,
    QueueAction,
    Sweep,
    UpdatePlan,
    plan_cancel,
    plan_retry,
    plan_update,
)
from jobqueue.domain.errors import (
    FlowNotFoundError,
    IdempotencyConflictError,
    InvalidTransitionError,
    JobNotFoundError,
    UnknownJobTypeError,
)
from jobqueue.domain.flows import Edge, FlowStep, check_parent_ids, plan_flow
from jobqueue.domain.jobs import (
    DeadLetter,
    Job,
    JobFilter,
    JobStatus,
    JSONValue,
    NewJob,
    ProgressReport,
    QueueState,
    build_job,
    is_same_request,
    job_fields,
    utcnow,
)
from jobqueue.domain.outcome import Failed, Outcome, Succeeded
from jobqueue.domain.retry import GiveUp, RetryLater, RetryPolicies, RetryPolicy
from jobqueue.domain.schedules import InvalidScheduleError, Schedule
from jobqueue.log_throttle import LogThrottle
from jobqueue.metrics import JobMetrics
from jobqueue.queue.base import Broker
from jobqueue.store.base import DuplicateIdempotencyKeyError, JobStore

log = structlog.get_logger(__name__)

_CHANGE_TRIES = 3
PRUNE_BATCH = 500
"""Jobs deleted per transaction by retention: short enough that claims barely wait."""
RETRY_BATCH = 500
"""Failed jobs sent back to pending per transaction by retry-failed."""

LEASE_EXPIRED = "lease expired: the worker running this attempt stopped (crash or kill)"


class JobService:
    """Create, read, change and finish jobs; the API and the worker call only this."""

    def __init__(
        self,
        store: JobStore,
        broker: Broker,
        policy: RetryPolicy | RetryPolicies,
        known_types: Collection[str] | None,
        schedules: Sequence[Schedule] = (),
        *,
        metrics: JobMetrics | None = None,
    ) -> None:
        """``known_types`` None accepts any type (an API serving remote workers); ``policy``
        is the settings' retry rule, or that and each type's own; ``schedules`` are the
        recurring jobs in force; ``metrics`` count what happens (a fresh set by default)."""
        self.store = store
        self.broker = broker
        self.policies = policy if isinstance(policy, RetryPolicies) else RetryPolicies(policy)
        """The retry rule of each job type (its handler's own, or the settings')."""
        self.known_types = known_types
        self.schedules = list(schedules)
        self._check_schedules()
        self._enqueue_failures = LogThrottle()
        self.metrics = metrics or JobMetrics()

    async def create(self, new: NewJob) -> tuple[Job, bool]:
        """Create a job; returns it and False when its idempotency key already existed."""
        jobs = await self.create_many([new])
        return jobs[0]

    async def create_many(self, requests: Sequence[NewJob]) -> list[tuple[Job, bool]]:
        """Create jobs in one transaction and one queue round trip.

        A repeated idempotency key (already stored, or earlier in the same batch) answers
        with the first job of that key instead of making another; the same key sent with a
        different request raises IdempotencyConflictError (HTTP 409).
        """
        for new in requests:
            self._check_type(new.type)
            check_parent_ids(new.depends_on)
        for _ in range(_CHANGE_TRIES):
            existing = await self._existing_by_key(requests)
            results, fresh = self._plan_creates(requests, existing)
            if not fresh:
                return results
            try:
                inserted = await self._insert(fresh, _parents_of(requests, results))
            except DuplicateIdempotencyKeyError:
                continue  # another request took a key meanwhile: answer with its job
            self.metrics.created(inserted)
            await self._publish(_runnable(inserted))
            return _as_inserted(results, inserted)
        raise InvalidTransitionError("Idempotency keys kept changing meanwhile; try again")

    def _plan_creates(
        self, requests: Sequence[NewJob], existing: dict[str | None, Job]
    ) -> tuple[list[tuple[Job, bool]], list[Job]]:
        """Each request's answer (job, created), and the new jobs to insert."""
        now = utcnow()
        by_key = dict(existing)
        results: list[tuple[Job, bool]] = []
        fresh: list[Job] = []
        for new in requests:
            key = new.idempotency_key
            if key is not None and key in by_key:
                results.append((_same_request(by_key[key], new), False))
                continue
            job = self._build(new, now)
            fresh.append(job)
            results.append((job, True))
            if key is not None:
                by_key[key] = job
        return results, fresh

    async def get(self, job_id: UUID) -> Job:
        """One job; JobNotFoundError when absent."""
        job = await self.store.get(job_id)
        if job is None:
            raise JobNotFoundError(job_id)
        return job

    async def list_jobs(self, query: JobFilter) -> list[Job]:
        """Jobs matching ``query``, newest first."""
        return await self.store.list_jobs(query)

    async def stats(self) -> dict[str, int]:
        """Count of jobs in every status, zero included."""
        counts = await self.store.count_by_status()
        return {status.value: counts.get(status, 0) for status in JobStatus}

    async def queue_state(self) -> QueueState:
        """The counts of /api/jobs/stats and the wait of the oldest due job (for /metrics)."""
        now = utcnow()
        counts = await self.stats()
        oldest = await self.store.oldest_due_pending(now)
        age = 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())
        return QueueState(counts, age)

    async def dead_letters(self, limit: int, offset: int) -> list[DeadLetter]:
        """Dead-letter entries, newest first."""
        return await self.store.dead_letters(limit, offset)

    async def retry(self, job_id: UUID) -> Job:
        """Send a failed job back to pending with its attempts reset."""
        return await self._change(job_id, plan_retry)

    async def retry_failed(self, job_type: str | None = None, batch: int = RETRY_BATCH) -> int:
        """Send every failed job (of ``job_type``; None: any) back to pending as ``retry``
        does, ``batch`` jobs per transaction, each batch published as it commits; how many.

        Only jobs that have failed when the call starts are retried, each at most once (a
        cursor walks them in creation order): a job that fails again meanwhile stays failed,
        and a job another request changes meanwhile is neither changed nor published here.
        """
        sweep = Sweep(job_type, utcnow(), batch)
        total = 0
        while True:
            retried = await self.store.apply_sweep(RETRY, sweep)
            total += len(retried)
            if retried:
                await self._publish(retried)
            if len(retried) < batch:
                break
            sweep = sweep.past(retried)
            await asyncio.sleep(0)  # let requests and claims in between batches
        log.info("failed jobs retried", count=total, job_type=job_type)
        return total

    async def cancel(self, job_id: UUID) -> Job:
        """Cancel a pending job, or a running one (its worker stops the handler)."""
        return await self._change(job_id, plan_cancel)

    async def update(self, job_id: UUID, changes: JobChanges) -> Job:
        """A PATCH: allowed changes act on the queue too; others raise InvalidTransitionError."""
        return await self._change(job_id, lambda job: plan_update(job, changes))

    async def delete(self, job_id: UUID) -> None:
        """Delete the row, then its queued trigger."""
        deleted = await self.store.delete(job_id)
        if deleted is None:
            raise JobNotFoundError(job_id)
        await self.broker.withdraw(job_id)

    async def record_outcome(self, job: Job, outcome: Outcome) -> Job | None:
        """Record one attempt's outcome, and the attempt in the job's history, once; None
        when the lease was lost meanwhile."""
        attempt = attempt_of(job, outcome, utcnow())
        if isinstance(outcome, Succeeded):
            completed = await self.store.complete(job, attempt, outcome.result)
            if completed is not None:
                self.metrics.completed(job.type, attempt.duration_ms)
            await self._publish_released(completed)
            return await self._dropped_if_none(job, completed, attempt)
        return await self._record_failure(job, outcome, attempt)

    def next_runs(self) -> list[tuple[Schedule, datetime]]:
        """Each recurring job with the time of its next tick."""
        now = utcnow()
        return [(schedule, schedule.next_tick(now)) for schedule in self.schedules]

    async def keys_taken(self, keys: Collection[str]) -> set[str]:
        """Those of the idempotency keys that a job holds."""
        jobs = await self.store.find_by_idempotency_keys(keys) if keys else []
        return {job.idempotency_key for job in jobs if job.idempotency_key is not None}

    async def cancelled_among(self, job_ids: Sequence[UUID]) -> set[UUID]:
        """Those of the jobs a worker runs that were cancelled meanwhile."""
        if not job_ids:
            return set()
        return await self.store.cancelled_among(job_ids)

    async def report_progress(self, reports: Sequence[ProgressReport]) -> None:
        """Store running attempts' progress (a report whose lease was lost is dropped)."""
        await self.store.set_progress(reports)

    async def attempts(self, job_id: UUID) -> list[Attempt]:
        """The finished attempts of a job, first to last; JobNotFoundError when absent."""
        history = await self.store.attempts(job_id)
        if history is None:
            raise JobNotFoundError(job_id)
        return history

    async def prune(self, older_than: timedelta, batch: int = PRUNE_BATCH) -> int:
        """Delete completed and cancelled jobs that finished more than ``older_than`` ago,
        with their history and idempotency keys, ``batch`` rows per transaction so that
        claims and requests get in between; how many were deleted."""
        before = utcnow() - older_than
        total = 0
        while True:
            deleted = await self.store.prune(before, batch)
            total += deleted
            if deleted < batch:
                return total
            await asyncio.sleep(0)

    async def expired_runs(self, limit: int) -> list[Job]:
        """Processing jobs whose lease has run out (their worker is gone)."""
        return await self.store.expired(utcnow(), limit)

    async def record_lost_attempt(self, job: Job) -> Job | None:
        """The worker running ``job`` died: that attempt failed, and the retry rule decides."""
        log.warning(LEASE_EXPIRED, **job_fields(job), owner=job.lease_owner)
        lost = lost_attempt(job, LEASE_EXPIRED, utcnow())
        return await self._record_failure(job, Failed(LEASE_EXPIRED), lost)

    async def recover_expired(self, limit: int = 100) -> int:
        """Jobs whose lease ran out: retried after the usual backoff, or failed when exhausted."""
        expired = await self.expired_runs(limit)
        for job in expired:
            await self.record_lost_attempt(job)
        return len(expired)

    async def _record_failure(self, job: Job, failure: Failed, attempt: Attempt) -> Job | None:
        decision = self.policies.for_type(job.type).decide(
            job.attempts, failure.error, permanent=failure.permanent, max_attempts=job.max_attempts
        )
        if isinstance(decision, RetryLater):
            run_at = utcnow() + decision.delay
            updated = await self.store.schedule_retry(job, run_at, failure.error, attempt)
            if updated is not None:
                self.metrics.retried(job.type, attempt.duration_ms)
                # No publish: the queue runs it at next_run_at (the table's claim checks
                # the time; BullMQ retries the same job with the same backoff).
                log.info("retry scheduled", **job_fields(job), next_run_at=run_at.isoformat())
            return await self._dropped_if_none(job, updated, attempt)
        return await self._fail(job, decision, attempt)

    async def _fail(self, job: Job, decision: GiveUp, attempt: Attempt) -> Job | None:
        keeps = self.broker.keeps_dead_letters
        failed = await self.store.fail(job, decision.reason, attempt, queue_pending=keeps)
        if failed is None:
            return await self._dropped_if_none(job, None, attempt)
        updated, entry = failed
        self.metrics.failed(job.type, attempt.duration_ms)
        log.error("job failed for good", **job_fields(job), reason=decision.reason)
        await self._publish_released(updated)
        if keeps and await self.broker.publish_dead_letter(entry):
            await self.store.dead_letter_queued(entry)
        return updated

    async def queue_dead_letters(self, limit: int) -> int:
        """Write the dead letters that could not reach the queue's own DLQ (Redis was down,
        or the process stopped in between); the row marks each until it is there."""
        written = 0
        for entry in await self.store.queue_pending_dead_letters(limit):
            if not await self.broker.publish_dead_letter(entry):
                break  # still down: the next round tries again
            await self.store.dead_letter_queued(entry)
            written += 1
        return written

    async def _dropped_if_none(self, job: Job, updated: Job | None, attempt: Attempt) -> Job | None:
        """``updated``; when the outcome was refused, the attempt of a job cancelled while it
        ran still goes into its history (and that job is returned)."""
        if updated is not None:
            return updated
        ended = await self.store.end_cancelled(job, cancelled_attempt(attempt))
        if ended is not None:
            log.info("job cancelled while it ran; its attempt is recorded", **job_fields(job))
            return ended
        log.warning("outcome dropped: the job was deleted or its lease lost", **job_fields(job))
        return None

    async def _change(self, job_id: UUID, planner: Callable[[Job], UpdatePlan]) -> Job:
        """Plan against the current row and apply only if the row is still in that state."""
        for _ in range(_CHANGE_TRIES):
            plan = planner(await self.get(job_id))
            updated = await self.store.apply(job_id, plan)
            if updated is None:
                continue  # a worker or another request changed the job: plan again
            if plan.action is QueueAction.ENQUEUE:
                await self._publish([updated])
            elif plan.action is QueueAction.WITHDRAW:
                await self.broker.withdraw(updated.id)
            await self._publish_released(updated)
            return updated
        raise InvalidTransitionError("The job kept changing while this request ran; try again")

    async def _publish(self, jobs: Sequence[Job]) -> None:
        try:
            await self.broker.publish(jobs)
        except Exception as exc:
            # The rows are committed; the reconciler enqueues them again later.
            self._enqueue_failures.log(
                type(exc).__name__,
                log.error,
                "enqueue failed; the job stays pending until the queue is back",
                error=str(exc),
                count=len(jobs),
            )

    def _check_schedules(self) -> None:
        for schedule in self.schedules:
            if self.known_types is not None and schedule.job_type not in self.known_types:
                raise InvalidScheduleError(
                    f"a schedule names job type '{schedule.job_type}', which has no handler "
                    "here: load its module with JOBQUEUE_HANDLERS (known types: "
                    f"{', '.join(sorted(self.known_types)) or 'none'})"
                )

    def _check_type(self, job_type: str) -> None:
        if self.known_types is not None and job_type not in self.known_types:
            raise UnknownJobTypeError(job_type, list(self.known_types))

    def _build(self, new: NewJob, now: datetime) -> Job:
        return build_job(new, now, self.policies.for_type(new.type).max_attempts)

    async def _insert(
        self, fresh: list[Job], parents_of: dict[UUID, tuple[UUID, ...]]
    ) -> list[Job]:
        """Jobs without parents take the plain insert (shared commits); others the one that
        reads their parents' state in its transaction."""
        if not parents_of:
            return await self.store.insert(fresh)
        return await self.store.insert_with_parents(fresh, parents_of)

    async def create_flow(
        self, steps: Sequence[FlowStep]
    ) -> tuple[UUID, dict[str, Job], list[Edge]]:
        """Create a flow's jobs and their dependencies in one transaction; returns the flow's
        id, each step's job (as inserted) by key, and the edges. InvalidFlowError (400) for a
        flow that cannot run."""
        for step in steps:
            self._check_type(step.job.type)
        now, flow_id = utcnow(), uuid4()
        planned, parents_of = plan_flow(steps, lambda new: self._build(new, now), flow_id)
        inserted = await self.store.insert_with_parents(list(planned.values()), parents_of)
        by_id = {job.id: job for job in inserted}
        await self._publish(_runnable(inserted))
        log.info("flow created", flow_id=str(flow_id), jobs=len(inserted))
        edges = [Edge(child, parent) for child, parents in parents_of.items() for parent in parents]
        return flow_id, {key: by_id[job.id] for key, job in planned.items()}, edges

    async def flow(self, flow_id: UUID) -> tuple[list[Job], list[Edge]]:
        """A flow's members, oldest first, with their edges; FlowNotFoundError when none."""
        members, edges = await self.store.flow(flow_id)
        if not members:
            raise FlowNotFoundError(flow_id)
        return members, edges

    async def cancel_flow(self, flow_id: UUID) -> tuple[list[Job], list[Edge]]:
        """Cancel every member of a flow not yet finished (running ones are told to stop);
        returns the flow as it is then."""
        await self.flow(flow_id)
        cancelled = await self.store.cancel_flow(flow_id)
        for job in cancelled:
            was_queued = job.lease_owner is None and not job.pending_parents
            if was_queued:
                await self.broker.withdraw(job.id)
            await self._publish_released(job)
        log.info("flow cancelled", flow_id=str(flow_id), cancelled=len(cancelled))
        return await self.flow(flow_id)

    async def parent_results(self, job_id: UUID) -> dict[UUID, JSONValue]:
        """The results of the jobs ``job_id`` waited for, by parent id (None: not completed)."""
        return await self.store.parent_results(job_id)

    async def _publish_released(self, parent: Job | None) -> None:
        """Publish the children a parent's outcome made pending (committed with it). Should
        the process stop in between, the reconciler publishes them (Redis mode)."""
        if parent is None or not parent.has_dependants:
            return
        released = await self.store.due_children(parent.id)
        if released:
            await self._publish(released)

    async def _existing_by_key(self, requests: Sequence[NewJob]) -> dict[str | None, Job]:
        keys = {new.idempotency_key for new in requests if new.idempotency_key}
        if not keys:
            return {}
        return {job.idempotency_key: job for job in await self.store.find_by_idempotency_keys(keys)}


def _parents_of(
    requests: Sequence[NewJob], results: Sequence[tuple[Job, bool]]
) -> dict[UUID, tuple[UUID, ...]]:
    """The parents of each new job that names some (``dependsOn``), by the new job's id."""
    return {
        job.id: new.depends_on
        for new, (job, created) in zip(requests, results, strict=True)
        if created and new.depends_on
    }


def _runnable(jobs: Sequence[Job]) -> list[Job]:
    """The jobs the queue must hear about: pending ones (not waiting, nor born cancelled)."""
    return [job for job in jobs if job.status is JobStatus.PENDING]


def _as_inserted(
    results: list[tuple[Job, bool]], inserted: Sequence[Job]
) -> list[tuple[Job, bool]]:
    """Each answer with the job as stored (a job with parents may start waiting)."""
    by_id = {job.id: job for job in inserted}
    return [(by_id.get(job.id, job) if created else job, created) for job, created in results]


def _same_request(job: Job, new: NewJob) -> Job:
    """``job``, made earlier with ``new``'s idempotency key, if ``new`` is the same request."""
    if not is_same_request(job.request_fingerprint, new):
        raise IdempotencyConflictError(str(new.idempotency_key), job.id)
    return job
