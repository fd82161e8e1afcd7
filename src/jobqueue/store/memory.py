"""A JobStore held in a dict, for unit tests: the SQL stores' semantics without a database.

After procrastinate's ``InMemoryConnector``: every method runs to its end without awaiting
anything, so on one event loop each call is atomic, as a statement is in the SQL stores.
The rules are those of ``sqlite_sql.py``, statement by statement; the unit tests in
``test_memory_store.py`` run the SQL stores' own suite (``integration/test_store.py``)
on this store and pin the rest of the contract.

Jobs are frozen dataclasses: a change stores a new one made with ``dataclasses.replace``.
Payloads are copied in and out (as the SQL stores encode and decode JSON), so a caller that
mutates a returned payload never changes the stored job.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import itertools
import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

from jobqueue.domain.attempts import Attempt
from jobqueue.domain.changes import Sweep, UpdatePlan
from jobqueue.domain.flows import (
    ChildEffect,
    Edge,
    arrivals,
    cancelled_for,
    effect_on_child,
    released,
)
from jobqueue.domain.jobs import (
    DeadLetter,
    Job,
    JobFilter,
    JobStatus,
    JSONValue,
    ProgressReport,
    utcnow,
)
from jobqueue.domain.limits import RATE_WINDOW_S, TypeLimit
from jobqueue.store.base import DuplicateIdempotencyKeyError, StoreError, TypeLimitReachedError


class InMemoryJobStore:
    """JobStore on a dict of jobs and a list of dead letters; no I/O, nothing shared."""

    def __init__(self) -> None:
        """An empty store."""
        self._jobs: dict[UUID, Job] = {}
        """Every job by id, in insertion order (the tie-break of equal claim keys)."""
        self._dead_letters: list[tuple[int, DeadLetter]] = []
        """Entries with their insertion number, the SQL tables' autoincrement id."""
        self._queue_pending: dict[int, DeadLetter] = {}
        """Dead letters still to be written to the queue's own DLQ, by insertion number."""
        self._sequence = itertools.count(1)
        self._attempts: list[Attempt] = []
        self._starts: list[tuple[str, datetime]] = []
        """When jobs of rate-limited types started."""
        self._edges: dict[tuple[UUID, UUID], bool] = {}
        """(child, parent) -> settled: the job_dependencies table."""
        """The history of every job, in the order attempts ended."""

    async def insert(self, jobs: Sequence[Job]) -> list[Job]:
        """Insert all or nothing; a key already taken, in the store or the batch, refuses all."""
        self._check_new(jobs)
        for job in jobs:
            self._jobs[job.id] = _stored(job)
        return list(jobs)

    async def insert_with_parents(
        self, jobs: Sequence[Job], parents_of: Mapping[UUID, Sequence[UUID]]
    ) -> list[Job]:
        """Insert jobs and their edges; parents outside ``jobs`` are marked and decide."""
        self._check_new(jobs)
        named = {parent for parents in parents_of.values() for parent in parents}
        outside = named - {job.id for job in jobs}
        existing = {p: self._jobs[p].status for p in outside if p in self._jobs}
        ready, edges = arrivals(jobs, parents_of, existing)
        for parent in outside:
            self._jobs[parent] = dataclasses.replace(self._jobs[parent], has_dependants=True)
        for job in ready:
            self._jobs[job.id] = _stored(job)
        self._edges.update({(edge.child_id, edge.parent_id): edge.settled for edge in edges})
        return _copies(ready)

    async def due_children(self, parent_id: UUID) -> list[Job]:
        """The pending children of ``parent_id``."""
        children = self._known(self._children(parent_id, unsettled_only=False))
        return _copies(job for job in children if job.status is JobStatus.PENDING)

    async def parent_results(self, child_id: UUID) -> dict[UUID, JSONValue]:
        """Each parent's result (None unless it completed)."""
        parents = self._known(p for (c, p) in self._edges if c == child_id)
        return {
            p.id: copy.deepcopy(p.result) if p.status is JobStatus.COMPLETED else None
            for p in parents
        }

    async def flow(self, flow_id: UUID) -> tuple[list[Job], list[Edge]]:
        """The flow's members, oldest first, and their edges."""
        members = [job for job in self._jobs.values() if job.flow_id == flow_id]
        members.sort(key=lambda job: (job.created_at, job.id))
        ids = {job.id for job in members}
        edges = [Edge(c, p, done) for (c, p), done in self._edges.items() if c in ids]
        return _copies(members), edges

    async def cancel_flow(self, flow_id: UUID) -> list[Job]:
        """Cancel the flow's unfinished members and pass that on."""
        unfinished = (JobStatus.WAITING, JobStatus.PENDING, JobStatus.PROCESSING)
        members = [
            j for j in self._jobs.values() if j.flow_id == flow_id and j.status in unfinished
        ]
        cancelled = [
            self._change(job, status=JobStatus.CANCELLED, next_run_at=None) for job in members
        ]
        for job in cancelled:
            if job.has_dependants:
                self._pass_on_failure(job.id, JobStatus.CANCELLED)
        return cancelled

    async def get(self, job_id: UUID) -> Job | None:
        """One job, or None."""
        job = self._jobs.get(job_id)
        return None if job is None else _copied(job)

    async def find_by_idempotency_keys(self, keys: Collection[str]) -> list[Job]:
        """The jobs created with any of these idempotency keys."""
        wanted = set(keys)
        return _copies(job for job in self._jobs.values() if job.idempotency_key in wanted)

    async def list_jobs(self, query: JobFilter) -> list[Job]:
        """Jobs of the filter's status and type, newest first by (created_at, id), paged."""
        matching = [job for job in self._jobs.values() if _matches(job, query)]
        matching.sort(key=lambda job: (job.created_at, job.id), reverse=True)
        return _copies(_page(matching, query.limit, query.offset))

    async def count_by_status(self) -> dict[JobStatus, int]:
        """How many jobs are in each status; statuses without jobs are missing."""
        counts: dict[JobStatus, int] = {}
        for job in self._jobs.values():
            counts[job.status] = counts.get(job.status, 0) + 1
        return counts

    async def apply(self, job_id: UUID, plan: UpdatePlan) -> Job | None:
        """Apply the plan's status, attempts and next run, only from ``plan.expected_status``."""
        job = self._jobs.get(job_id)
        if job is None or job.status is not plan.expected_status:
            return None
        changed = self._change(
            job,
            status=plan.status,
            attempts=plan.attempts,
            next_run_at=_utc(plan.next_run_at),
        )
        if changed.has_dependants and changed.status is JobStatus.CANCELLED:
            self._pass_on_failure(job_id, JobStatus.CANCELLED)
        elif changed.has_dependants and plan.expected_status is JobStatus.FAILED:
            self._rearm(job_id)
        return changed

    async def oldest_due_pending(self, now: datetime) -> datetime | None:
        """The earliest ``next_run_at`` (or, unscheduled, ``created_at``) of a due pending job."""
        return min(
            (
                job.next_run_at or job.created_at
                for job in self._jobs.values()
                if _claimable(job, now, None)
            ),
            default=None,
        )

    async def apply_sweep(self, plan: UpdatePlan, sweep: Sweep) -> list[Job]:
        """Apply the plan to the next ``sweep.limit`` jobs in ``plan.expected_status`` of the
        sweep's type created by its time, in (created_at, id) order after its cursor."""
        cursor = (sweep.after_created, sweep.after_id)
        selected = [
            job
            for job in self._jobs.values()
            if job.status is plan.expected_status
            and (sweep.job_type is None or job.type == sweep.job_type)
            and cursor < (job.created_at, job.id)
            and job.created_at <= sweep.created_by
        ]
        selected.sort(key=lambda job: (job.created_at, job.id))
        now = utcnow()
        changed = [
            self._change(
                job,
                now=now,
                status=plan.status,
                attempts=plan.attempts,
                next_run_at=_utc(plan.next_run_at),
            )
            for job in selected[: max(sweep.limit, 0)]
        ]
        for job in changed:
            if job.has_dependants and plan.expected_status is JobStatus.FAILED:
                self._rearm(job.id)
        return changed

    async def delete(self, job_id: UUID) -> Job | None:
        """Remove a job and its history (its dead letters stay); what was removed, or None."""
        if job_id in self._jobs and self._jobs[job_id].has_dependants:
            self._pass_on_failure(job_id, None)
        self._edges = {edge: done for edge, done in self._edges.items() if job_id not in edge}
        job = self._jobs.pop(job_id, None)
        self._attempts = [attempt for attempt in self._attempts if attempt.job_id != job_id]
        return None if job is None else _copied(job)

    async def claim(
        self, owner: str, limit: int, lease_until: datetime, types: Sequence[str] | None = None
    ) -> list[Job]:
        """Take up to ``limit`` due pending jobs of ``types`` by (priority, created_at)."""
        now = utcnow()
        due = [job for job in self._jobs.values() if _claimable(job, now, types)]
        due.sort(key=lambda job: (job.priority, job.created_at))
        return [
            self._lease(job, job.attempts + 1, owner, lease_until, now)
            for job in due[: max(limit, 0)]
        ]

    async def claim_limited(
        self, owner: str, job_type: str, limit: TypeLimit, want: int, lease_until: datetime
    ) -> list[Job]:
        """As ``claim`` for one type, no more than ``limit`` leaves room for."""
        room = min(want, self._room(job_type, limit))
        claimed = await self.claim(owner, room, lease_until, [job_type]) if room > 0 else []
        self._note_starts(job_type, limit, len(claimed))
        return claimed

    async def start_limited(
        self, job_id: UUID, owner: str, lease_until: datetime, due_by: datetime, limit: TypeLimit
    ) -> Job | None:
        """As ``start``; TypeLimitReachedError when ``limit`` leaves no room."""
        job = self._jobs.get(job_id)
        if job is None:
            return None
        if self._room(job.type, limit) <= 0:
            raise TypeLimitReachedError(f"job type {job.type!r} is at its limit")
        started = await self.start(job_id, owner, lease_until, due_by)
        self._note_starts(job.type, limit, 0 if started is None else 1)
        return started

    def _room(self, job_type: str, limit: TypeLimit) -> int:
        running = sum(
            1
            for j in self._jobs.values()
            if j.type == job_type and j.status is JobStatus.PROCESSING
        )
        since = utcnow() - timedelta(seconds=RATE_WINDOW_S)
        started = sum(1 for t, at in self._starts if t == job_type and at > since)
        return limit.room(running, started)

    def _note_starts(self, job_type: str, limit: TypeLimit, count: int) -> None:
        if limit.rate is not None:
            self._starts.extend([(job_type, utcnow())] * count)

    async def start(
        self, job_id: UUID, owner: str, lease_until: datetime, due_by: datetime
    ) -> Job | None:
        """Start the next attempt of a pending job due by ``due_by``."""
        job = self._jobs.get(job_id)
        if job is None or job.status is not JobStatus.PENDING:
            return None
        if job.next_run_at is not None and job.next_run_at > due_by:
            return None
        return self._lease(job, job.attempts + 1, owner, lease_until, utcnow())

    async def renew(self, owner: str, job_ids: Sequence[UUID], lease_until: datetime) -> set[UUID]:
        """Extend the leases ``owner`` still holds (``updated_at`` untouched), of running jobs
        and of jobs cancelled while they run; their ids."""
        running = (JobStatus.PROCESSING, JobStatus.CANCELLED)
        held = [j for j in self._known(job_ids) if j.status in running and j.lease_owner == owner]
        for job in held:
            self._jobs[job.id] = dataclasses.replace(job, lease_expires_at=_utc(lease_until))
        return {job.id for job in held}

    async def complete(self, job: Job, attempt: Attempt, result: JSONValue = None) -> Job | None:
        """Record success, ``result`` and ``attempt``, if ``job.lease_owner`` still holds
        the lease."""
        held = self._ended(job, attempt)
        if held is None:
            return None
        stored = json.loads(json.dumps(result))  # a copy, as a database would keep it
        done = self._change(held, status=JobStatus.COMPLETED, result=stored, **_NO_LEASE)
        if done.has_dependants:
            for child in self._children(done.id):
                self._settle(child, done.id)
        return done

    async def schedule_retry(
        self, job: Job, run_at: datetime, error: str, attempt: Attempt
    ) -> Job | None:
        """Pending again at ``run_at`` with ``error`` kept, if the lease is still held."""
        held = self._ended(job, attempt)
        if held is None:
            return None
        return self._change(
            held,
            status=JobStatus.PENDING,
            next_run_at=_utc(run_at),
            last_error=error,
            **_NO_LEASE,
        )

    async def fail(
        self, job: Job, reason: str, attempt: Attempt, *, queue_pending: bool = False
    ) -> tuple[Job, DeadLetter] | None:
        """Failed for good plus its dead-letter entry, if the lease is still held."""
        held = self._ended(job, attempt)
        if held is None:
            return None
        failed = self._change(held, status=JobStatus.FAILED, last_error=reason, **_NO_LEASE)
        if failed.has_dependants:
            self._pass_on_failure(failed.id, JobStatus.FAILED)
        entry = DeadLetter.of_failed(failed, reason)
        number = next(self._sequence)
        self._dead_letters.append((number, _copied_entry(entry)))
        if queue_pending:
            self._queue_pending[number] = entry
        return failed, entry

    async def cancelled_among(self, job_ids: Sequence[UUID]) -> set[UUID]:
        """Those of ``job_ids`` that are cancelled."""
        return {job.id for job in self._known(job_ids) if job.status is JobStatus.CANCELLED}

    async def end_cancelled(self, job: Job, attempt: Attempt) -> Job | None:
        """Keep the last attempt of a job cancelled while it ran; its lease ends."""
        stored = self._jobs.get(job.id)
        if stored is None or stored.status is not JobStatus.CANCELLED:
            return None
        if stored.lease_owner != job.lease_owner:
            return None
        self._attempts.append(attempt)
        ended = dataclasses.replace(stored, **_NO_LEASE)
        self._jobs[job.id] = ended
        return _copied(ended)

    async def prune(self, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` completed or cancelled jobs last changed before ``before``,
        but for parents of unfinished children."""
        finished = (JobStatus.COMPLETED, JobStatus.CANCELLED)
        old = [
            job.id
            for job in self._jobs.values()
            if job.status in finished and job.updated_at < before and not self._awaited(job)
        ]
        for job_id in old[: max(limit, 0)]:
            await self.delete(job_id)
        return min(len(old), max(limit, 0))

    def _awaited(self, parent: Job) -> bool:
        """A child that may still read ``parent``'s result has not finished."""
        unfinished = (JobStatus.WAITING, JobStatus.PENDING, JobStatus.PROCESSING)
        children = (self._jobs.get(c) for (c, p) in self._edges if p == parent.id)
        return any(child is not None and child.status in unfinished for child in children)

    async def set_progress(self, reports: Sequence[ProgressReport]) -> None:
        """Keep each report whose worker still holds the job's lease."""
        for report in reports:
            job = self._jobs.get(report.job_id)
            if job is not None and _held_by(job, report.owner):
                self._jobs[job.id] = dataclasses.replace(
                    job, progress=report.percent, progress_message=report.message
                )

    async def attempts(self, job_id: UUID) -> list[Attempt] | None:
        """The finished attempts of a job, first to last; None when there is no such job."""
        if job_id not in self._jobs:
            return None
        return sorted(
            (attempt for attempt in self._attempts if attempt.job_id == job_id),
            key=lambda attempt: attempt.number,
        )

    def _ended(self, job: Job, attempt: Attempt) -> Job | None:
        """The stored job if ``job``'s lease is still held, with ``attempt`` kept."""
        held = self._held(job)
        if held is not None:
            self._attempts.append(attempt)
        return held

    async def queue_pending_dead_letters(self, limit: int) -> list[DeadLetter]:
        """Entries still to be written to the queue's DLQ, oldest first."""
        return [_copied_entry(entry) for _n, entry in sorted(self._queue_pending.items())][:limit]

    async def dead_letter_queued(self, entry: DeadLetter) -> None:
        """No longer pending for the queue's DLQ."""
        for number, pending in list(self._queue_pending.items()):
            if (pending.job_id, pending.failed_at) == (entry.job_id, entry.failed_at):
                del self._queue_pending[number]

    async def release(self, job: Job) -> Job | None:
        """Pending again with the started attempt given back, if the lease is still held."""
        held = self._held(job)
        if held is None:
            return None
        return self._change(held, status=JobStatus.PENDING, attempts=held.attempts - 1, **_NO_LEASE)

    async def expired(self, now: datetime, limit: int) -> list[Job]:
        """Processing jobs whose lease ran out before ``now``, the oldest lease first."""
        lapsed = [job for job in self._jobs.values() if _lapsed(job, now)]
        lapsed.sort(key=lambda job: job.lease_expires_at or now)
        return _copies(lapsed[: max(limit, 0)])

    async def next_run_at(self, types: Sequence[str] | None = None) -> datetime | None:
        """The earliest ``next_run_at`` of a pending job of ``types`` (due already or not)."""
        times = [
            job.next_run_at
            for job in self._jobs.values()
            if job.status is JobStatus.PENDING
            and job.next_run_at is not None
            and (types is None or job.type in types)
        ]
        return min(times, default=None)

    async def dead_letters(self, limit: int, offset: int) -> list[DeadLetter]:
        """Dead-letter entries, newest first by (failed_at, insertion order)."""
        entries = sorted(self._dead_letters, key=lambda row: (row[1].failed_at, row[0]))
        newest_first = [_copied_entry(entry) for _number, entry in reversed(entries)]
        return _page(newest_first, limit, offset)

    def listen(self, on_notify: Callable[[], None]) -> AbstractAsyncContextManager[None]:
        """Nothing to listen to: no other process shares this store."""
        return contextlib.nullcontext()

    async def ping(self) -> None:
        """Always answers."""

    async def close(self) -> None:
        """Nothing to release."""

    def _check_new(self, jobs: Sequence[Job]) -> None:
        """Raise unless every id is new and every idempotency key is free (batch included)."""
        ids = [job.id for job in jobs]
        if len(set(ids)) != len(ids) or any(job_id in self._jobs for job_id in ids):
            raise StoreError("a job with this id already exists")
        keys = [job.idempotency_key for job in jobs if job.idempotency_key is not None]
        taken = {job.idempotency_key for job in self._jobs.values()}
        if len(set(keys)) != len(keys) or taken.intersection(keys):
            raise DuplicateIdempotencyKeyError("idempotency_key is already taken")

    def _children(self, parent_id: UUID, *, unsettled_only: bool = True) -> list[UUID]:
        return [
            c
            for (c, p), done in self._edges.items()
            if p == parent_id and not (unsettled_only and done)
        ]

    def _settle(self, child_id: UUID, parent_id: UUID) -> None:
        """The edge is settled and the child has one unfinished parent less."""
        self._edges[(child_id, parent_id)] = True
        child = released(self._jobs[child_id], 1)
        self._change(child, status=child.status, pending_parents=child.pending_parents)

    def _pass_on_failure(self, parent_id: UUID, how: JobStatus | None) -> None:
        """As the SQL stores' ``_pass_on_failure``: cancel or release waiting children."""
        ended: list[tuple[UUID, JobStatus | None]] = [(parent_id, how)]
        while ended:
            parent, status = ended.pop()
            for child in self._known(self._children(parent)):
                effect = effect_on_child(child.status, child.on_parent_failure)
                if effect is ChildEffect.SETTLE:
                    self._settle(child.id, parent)
                elif effect is ChildEffect.CANCEL:
                    self._change(cancelled_for(child, parent, status))
                    if child.has_dependants:
                        ended.append((child.id, JobStatus.CANCELLED))

    def _rearm(self, parent_id: UUID) -> None:
        """The children its failure cancelled (and theirs) wait again."""
        parents = [parent_id]
        while parents:
            parent = parents.pop()
            for child in self._known(self._children(parent, unsettled_only=False)):
                if child.status is JobStatus.CANCELLED and child.cancelled_by_parent == parent:
                    self._change(
                        child, status=JobStatus.WAITING, cancelled_by_parent=None, last_error=None
                    )
                    if child.has_dependants:
                        parents.append(child.id)

    def _held(self, job: Job) -> Job | None:
        """The stored job, if it is processing under ``job.lease_owner``'s lease."""
        stored = self._jobs.get(job.id)
        if stored is None or job.lease_owner is None or not _held_by(stored, job.lease_owner):
            return None
        return stored

    def _known(self, job_ids: Iterable[UUID]) -> list[Job]:
        """The stored jobs among ``job_ids``, each once."""
        return [self._jobs[job_id] for job_id in dict.fromkeys(job_ids) if job_id in self._jobs]

    def _lease(
        self, job: Job, attempt: int, owner: str, lease_until: datetime, now: datetime
    ) -> Job:
        """Start attempt ``attempt`` under ``owner``'s lease."""
        return self._change(
            job,
            now=now,
            status=JobStatus.PROCESSING,
            attempts=attempt,
            lease_owner=owner,
            lease_expires_at=_utc(lease_until),
            next_run_at=None,
            progress=None,
            progress_message=None,
        )

    def _change(self, job: Job, *, now: datetime | None = None, **fields: Any) -> Job:
        """Store ``job`` with ``fields`` changed and ``updated_at`` now; return a copy."""
        changed = dataclasses.replace(job, **fields, updated_at=now or utcnow())
        self._jobs[job.id] = changed
        return _copied(changed)


T = TypeVar("T")

_NO_LEASE: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None}
"""What every outcome does to the lease: gives it up."""


def _claimable(job: Job, now: datetime, types: Sequence[str] | None) -> bool:
    """Pending, due, and of one of ``types`` (None: any type)."""
    due = job.next_run_at is None or job.next_run_at <= now
    wanted = types is None or job.type in types
    return job.status is JobStatus.PENDING and due and wanted


def _held_by(job: Job, owner: str | None) -> bool:
    """Processing under ``owner``'s lease."""
    return job.status is JobStatus.PROCESSING and job.lease_owner == owner


def _lapsed(job: Job, now: datetime) -> bool:
    """Processing with a lease that ran out before ``now``."""
    expires = job.lease_expires_at
    return job.status is JobStatus.PROCESSING and expires is not None and expires < now


def _matches(job: Job, query: JobFilter) -> bool:
    """The list filter: status and type when given."""
    status_ok = query.status is None or job.status is query.status
    return status_ok and (query.type is None or job.type == query.type)


def _page(items: Sequence[T], limit: int, offset: int) -> list[T]:
    """``LIMIT limit OFFSET offset``."""
    start = max(offset, 0)
    return list(items[start : start + max(limit, 0)])


def _utc(moment: datetime | None) -> datetime | None:
    """A time as the SQL stores give it back: in UTC."""
    return None if moment is None else moment.astimezone(UTC)


def _json_copy(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload as JSON gives it back (the SQL stores encode it; refuses what JSON can't)."""
    copied: dict[str, Any] = json.loads(json.dumps(payload, ensure_ascii=False))
    return copied


def _stored(job: Job) -> Job:
    """A new job as the store keeps it: own payload, times in UTC."""
    return dataclasses.replace(
        job,
        payload=_json_copy(job.payload),
        next_run_at=_utc(job.next_run_at),
        lease_expires_at=_utc(job.lease_expires_at),
        created_at=job.created_at.astimezone(UTC),
        updated_at=job.updated_at.astimezone(UTC),
    )


def _copied(job: Job) -> Job:
    """A stored job handed out with a payload of its own."""
    return dataclasses.replace(job, payload=copy.deepcopy(job.payload))


def _copies(jobs: Iterable[Job]) -> list[Job]:
    """``_copied`` of each."""
    return [_copied(job) for job in jobs]


def _copied_entry(entry: DeadLetter) -> DeadLetter:
    """A dead letter with a payload of its own (kept, or handed out)."""
    return dataclasses.replace(entry, payload=copy.deepcopy(entry.payload))
