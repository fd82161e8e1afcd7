"""The PostgreSQL store: an ``asyncpg`` pool, statements prepared once per connection.

Single creates from concurrent requests, and job completions, share transactions (group
commit): under load N round trips become a few, at idle nothing waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any, NamedTuple
from uuid import UUID

import asyncpg

from jobqueue.domain.attempts import Attempt, attempt_from_record, attempt_record
from jobqueue.domain.changes import Sweep, UpdatePlan
from jobqueue.domain.flows import (
    ChildEffect,
    Edge,
    arrivals,
    effect_on_child,
    parent_failure_reason,
)
from jobqueue.domain.jobs import (
    CompletionRead,
    DeadLetter,
    Job,
    JobFilter,
    JobStatus,
    JSONValue,
    OnParentFailure,
    ProgressReport,
    completed,
    utcnow,
)
from jobqueue.domain.limits import RATE_WINDOW_S, TypeLimit
from jobqueue.store import postgres_sql as sql
from jobqueue.store.base import (
    DuplicateIdempotencyKeyError,
    StoreUnavailableError,
    TypeLimitReachedError,
    UnstorableValueError,
)
from jobqueue.store.batching import GroupCommit
from jobqueue.store.listen import listening, listening_to_payloads

_MAX_BATCH = 500
_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.OperatorInterventionError,
    asyncpg.TooManyConnectionsError,
    # A statement sent on a connection the server is terminating (a restart) finds its
    # protocol in the middle of the shutdown: "cannot switch to state ...".
    asyncpg.InternalClientError,
)
"""The database is down, restarting, full of connections, or did not answer in time."""

_SESSION_SETTINGS = {
    "application_name": "jobqueue",
    # A queue table's statistics are always stale: a burst of creates is planned as "one
    # pending row", so the claim would sort the whole backlog on every call. Every ORDER BY
    # of this store has an index in its order; without sorts the planner walks it.
    "enable_sort": "off",
}

Record = Any  # asyncpg.Record: read by position in JOB_COLUMNS order


_REPORT_FIELDS = ("job_id", "owner", "percent", "message")
"""SET_PROGRESS's unnest columns, in order."""


Completed = tuple[datetime, CompletionRead]
"""When a job was completed, and what its completion read back."""


class _Completion(NamedTuple):
    """One success to record: the columns of COMPLETE_MANY's unnest, in order."""

    job_id: UUID
    owner: str | None
    result: str | None
    attempt: str


class _Start(NamedTuple):
    """One delivery to start: the columns of START_DUE_MANY's unnest, in order."""

    job_id: UUID
    owner: str
    lease_until: datetime
    due_by: datetime


def plain_dsn(database_url: str) -> str:
    """The URL as libpq and asyncpg spell it (SQLAlchemy's ``+asyncpg`` suffix dropped)."""
    scheme, sep, rest = database_url.partition("://")
    return f"{scheme.split('+')[0]}{sep}{rest}"


class PostgresJobStore:
    """JobStore on PostgreSQL through an asyncpg pool."""

    def __init__(self, database_url: str, *, timeout_s: float = 5.0, pool_size: int = 10) -> None:
        """Opens no connection until the first call."""
        self.dsn = plain_dsn(database_url)
        self.timeout_s = timeout_s
        self.pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()
        self._inserts: GroupCommit[Job, UUID, Job] = GroupCommit(
            self._insert_shared, key=lambda job: job.id, max_batch=_MAX_BATCH
        )
        self._completions: GroupCommit[_Completion, UUID, Completed] = GroupCommit(
            self._complete_many, key=lambda done: done.job_id, max_batch=_MAX_BATCH
        )
        self._starts: GroupCommit[_Start, UUID, Job] = GroupCommit(
            self._start_many, key=lambda start: start.job_id, max_batch=_MAX_BATCH
        )

    async def insert(self, new_jobs: Sequence[Job]) -> list[Job]:
        if len(new_jobs) == 1 and new_jobs[0].idempotency_key is None:
            # Without an idempotency key nothing can conflict, so one row cannot fail the
            # others it shares a transaction with.
            await self._inserts.submit(new_jobs[0])
        else:
            await self._insert_many(new_jobs)
        return list(new_jobs)

    async def _insert_shared(self, new_jobs: Sequence[Job]) -> dict[UUID, Job | Exception]:
        """Single creates from concurrent requests in one statement; should the database
        refuse a value, each is inserted on its own so that only its own request fails."""
        try:
            return dict(await self._insert_many(new_jobs))
        except UnstorableValueError:
            if len(new_jobs) == 1:
                raise
        outcomes: dict[UUID, Job | Exception] = {}
        for job in new_jobs:
            try:
                outcomes.update(await self._insert_many([job]))
            except UnstorableValueError as exc:
                outcomes[job.id] = exc
        return outcomes

    async def _insert_many(self, new_jobs: Sequence[Job]) -> dict[UUID, Job]:
        columns = list(zip(*(encode_job(job) for job in new_jobs), strict=True))
        try:
            await self._execute(sql.INSERT_JOBS, *columns)
        except asyncpg.UniqueViolationError as exc:
            raise DuplicateIdempotencyKeyError(str(exc)) from exc
        return {job.id: job for job in new_jobs}

    async def get(self, job_id: UUID) -> Job | None:
        return await self._one(sql.GET_JOB, job_id)

    async def find_by_idempotency_keys(self, keys: Collection[str]) -> list[Job]:
        return await self._all(sql.JOBS_BY_IDEMPOTENCY_KEYS, list(keys))

    async def list_jobs(self, query: JobFilter) -> list[Job]:
        status = None if query.status is None else query.status.value
        return await self._all(sql.LIST_JOBS, status, query.type, query.limit, query.offset)

    async def count_by_status(self) -> dict[JobStatus, int]:
        rows = await self._fetch(sql.COUNT_BY_STATUS)
        return {JobStatus(status): count for status, count in rows}

    async def apply(self, job_id: UUID, plan: UpdatePlan) -> Job | None:
        now = utcnow()
        values = (plan.status.value, plan.attempts, plan.next_run_at)
        async with self._connection() as conn, conn.transaction():
            args = (job_id, *values, plan.expected_status.value, now)
            row = await conn.fetchrow(sql.APPLY_PLAN, *args, timeout=self.timeout_s)
            changed = None if row is None else decode_job(row)
            if changed is not None and changed.has_dependants:
                await self._pass_on_change(conn, changed, plan, now)
        return changed

    async def oldest_due_pending(self, now: datetime) -> datetime | None:
        rows = await self._fetch(sql.OLDEST_DUE_PENDING, now)
        value: datetime | None = rows[0][0]
        return value

    async def apply_sweep(self, plan: UpdatePlan, sweep: Sweep) -> list[Job]:
        values = (plan.status.value, plan.attempts, plan.next_run_at, utcnow())
        selection = (plan.expected_status.value, sweep.job_type, sweep.created_by)
        cursor = (sweep.after_created, sweep.after_id, sweep.limit)
        args = (*values, *selection, *cursor)
        async with self._connection() as conn, conn.transaction():
            rows = await conn.fetch(sql.APPLY_PLAN_TO_SWEEP, *args, timeout=self.timeout_s)
            changed = [decode_job(row) for row in rows]
            for job in changed:
                if job.has_dependants:
                    await self._pass_on_change(conn, job, plan, values[3])
        return changed

    async def delete(self, job_id: UUID) -> Job | None:
        async with self._connection() as conn, conn.transaction():
            row = await conn.fetchrow(sql.GET_JOB_FOR_UPDATE, job_id, timeout=self.timeout_s)
            if row is not None and decode_job(row).has_dependants:
                await self._pass_on_failure(conn, job_id, None, utcnow())
            row = await conn.fetchrow(sql.DELETE_JOB, job_id, timeout=self.timeout_s)
        return None if row is None else decode_job(row)

    async def claim(
        self, owner: str, limit: int, lease_until: datetime, types: Sequence[str] | None = None
    ) -> list[Job]:
        wanted = None if types is None else list(types)
        claimed = await self._all(sql.CLAIM_DUE, owner, lease_until, utcnow(), wanted, limit)
        return sorted(claimed, key=lambda job: (job.priority, job.created_at))

    async def claim_limited(
        self, owner: str, job_type: str, limit: TypeLimit, want: int, lease_until: datetime
    ) -> list[Job]:
        now = utcnow()
        async with self._connection() as conn, conn.transaction():
            room = min(want, await _room(conn, job_type, limit, now, self.timeout_s))
            if room <= 0:
                return []
            args = (owner, lease_until, now, [job_type], room)
            rows = await conn.fetch(sql.CLAIM_DUE, *args, timeout=self.timeout_s)
            await _note_starts(conn, job_type, limit, len(rows), now)
        claimed = [decode_job(row) for row in rows]
        return sorted(claimed, key=lambda job: (job.priority, job.created_at))

    async def start_limited(
        self, job_id: UUID, owner: str, lease_until: datetime, due_by: datetime, limit: TypeLimit
    ) -> Job | None:
        now = utcnow()
        async with self._connection() as conn, conn.transaction():
            row = await conn.fetchrow(sql.GET_JOB, job_id, timeout=self.timeout_s)
            if row is None:
                return None
            job_type = decode_job(row).type
            if await _room(conn, job_type, limit, now, self.timeout_s) <= 0:
                raise TypeLimitReachedError(f"job type {job_type!r} is at its limit")
            columns = ([job_id], [owner], [lease_until], [due_by], now)
            rows = await conn.fetch(sql.START_DUE_MANY, *columns, timeout=self.timeout_s)
            await _note_starts(conn, job_type, limit, len(rows), now)
        return decode_job(rows[0]) if rows else None

    async def start(
        self, job_id: UUID, owner: str, lease_until: datetime, due_by: datetime
    ) -> Job | None:
        return await self._starts.submit(_Start(job_id, owner, lease_until, due_by))

    async def _start_many(self, starts: Sequence[_Start]) -> dict[UUID, Job]:
        """One UPDATE for the deliveries of a pushing queue that arrived together."""
        columns = list(zip(*starts, strict=True))
        started = await self._all(sql.START_DUE_MANY, *columns, utcnow())
        return {job.id: job for job in started}

    async def renew(self, owner: str, job_ids: Sequence[UUID], lease_until: datetime) -> set[UUID]:
        if not job_ids:
            return set()
        rows = await self._fetch(sql.RENEW_LEASES, list(job_ids), owner, lease_until)
        return {UUID(bytes=row[0].bytes) for row in rows}

    async def complete(self, job: Job, attempt: Attempt, result: JSONValue = None) -> Job | None:
        encoded = None if result is None else _json(result)
        logged = _json(attempt_record(attempt))
        held = _Completion(job.id, job.lease_owner, encoded, logged)
        done = await self._completions.submit(held)
        return None if done is None else completed(job, result, *done)

    async def _complete_many(self, held: Sequence[_Completion]) -> dict[UUID, Completed]:
        """One statement for every job whose worker still holds its lease, history included;
        it reads back only what the worker's copy lacks (decoding the whole row cost a fifth
        of a completion's CPU).

        Parents are left out of it and completed after it with their fan-in step, in a
        transaction of their own: the jobs it did not complete are those (or ones whose lease
        was lost, which that transaction then does not complete either).
        """
        # Rows locked in id order (as PostgreSQL orders uuids): no deadlock with a fan-in.
        ordered = sorted(held, key=lambda completion: completion.job_id.int)
        columns = list(zip(*ordered, strict=True))
        now = utcnow()
        rows = await self._fetch(sql.COMPLETE_MANY, *columns, now, False)
        done = _completions(rows, now)
        rest = [completion for completion in ordered if completion.job_id not in done]
        if rest:
            done.update(await self._complete_parents(rest))
        return done

    async def _complete_parents(self, held: Sequence[_Completion]) -> dict[UUID, Completed]:
        """Complete parents and release their children whose last parent they were."""
        columns = list(zip(*held, strict=True))
        now = utcnow()
        async with self._connection() as conn, conn.transaction():
            rows = await conn.fetch(sql.COMPLETE_MANY, *columns, now, True, timeout=self.timeout_s)
            done = _completions(rows, now)
            parents = [job_id for job_id, (_at, read) in done.items() if read.has_dependants]
            if parents:
                await conn.fetch(sql.RELEASE_CHILDREN, parents, now, timeout=self.timeout_s)
        return done

    async def schedule_retry(
        self, job: Job, run_at: datetime, error: str, attempt: Attempt
    ) -> Job | None:
        return await self._one(sql.SCHEDULE_RETRY, *_ended(job, attempt), run_at, error)

    async def fail(
        self, job: Job, reason: str, attempt: Attempt, *, queue_pending: bool = False
    ) -> tuple[Job, DeadLetter] | None:
        ended = _ended(job, attempt)
        failed = await self._one(sql.FAIL, *ended, reason, queue_pending, False)
        if failed is None:  # a parent (or a lost lease): fail it with its children
            async with self._connection() as conn, conn.transaction():
                args = (*ended, reason, queue_pending, True)
                row = await conn.fetchrow(sql.FAIL, *args, timeout=self.timeout_s)
                failed = None if row is None else decode_job(row)
                if failed is not None and failed.has_dependants:
                    await self._pass_on_failure(conn, failed.id, JobStatus.FAILED, ended[2])
        if failed is None:
            return None
        entry = DeadLetter.of_failed(failed, reason)
        return failed, entry

    async def cancelled_among(self, job_ids: Sequence[UUID]) -> set[UUID]:
        rows = await self._fetch(sql.CANCELLED_AMONG, list(job_ids))
        return {UUID(bytes=row[0].bytes) for row in rows}

    async def end_cancelled(self, job: Job, attempt: Attempt) -> Job | None:
        logged = _json(attempt_record(attempt))
        return await self._one(sql.END_CANCELLED, job.id, job.lease_owner, logged)

    async def prune(self, before: datetime, limit: int) -> int:
        [(deleted,)] = await self._fetch(sql.PRUNE, before, limit)
        return int(deleted)

    async def set_progress(self, reports: Sequence[ProgressReport]) -> None:
        columns = [[getattr(r, name) for r in reports] for name in _REPORT_FIELDS]
        await self._execute(sql.SET_PROGRESS, *columns)

    async def attempts(self, job_id: UUID) -> list[Attempt] | None:
        rows = await self._fetch(sql.ATTEMPT_LOG, job_id)
        if not rows:
            return None
        return [attempt_from_record(job_id, record) for record in json.loads(rows[0][0])]

    async def release(self, job: Job) -> Job | None:
        return await self._one(sql.RELEASE, *_held(job))

    async def expired(self, now: datetime, limit: int) -> list[Job]:
        return await self._all(sql.EXPIRED_LEASES, now, limit)

    async def next_run_at(self, types: Sequence[str] | None = None) -> datetime | None:
        rows = await self._fetch(sql.NEXT_RUN_AT, None if types is None else list(types))
        value: datetime | None = rows[0][0]
        return value

    async def dead_letters(self, limit: int, offset: int) -> list[DeadLetter]:
        rows = await self._fetch(sql.LIST_DEAD_LETTERS, limit, offset)
        return [_decode_dead_letter(row) for row in rows]

    async def queue_pending_dead_letters(self, limit: int) -> list[DeadLetter]:
        rows = await self._fetch(sql.QUEUE_PENDING_DEAD_LETTERS, limit)
        return [_decode_dead_letter(row) for row in rows]

    async def dead_letter_queued(self, entry: DeadLetter) -> None:
        await self._execute(sql.DEAD_LETTER_QUEUED, entry.job_id, entry.failed_at)

    async def insert_with_parents(
        self, new_jobs: Sequence[Job], parents_of: Mapping[UUID, Sequence[UUID]]
    ) -> list[Job]:
        named = {parent for parents in parents_of.values() for parent in parents}
        outside = sorted(named - {job.id for job in new_jobs})
        async with self._connection() as conn, conn.transaction():
            existing: dict[UUID, JobStatus] = {}
            if outside:
                rows = await conn.fetch(sql.MARK_PARENTS, outside, timeout=self.timeout_s)
                existing = {UUID(bytes=row[0].bytes): JobStatus(row[1]) for row in rows}
            ready, edges = arrivals(new_jobs, parents_of, existing)
            columns = list(zip(*(encode_job(job) for job in ready), strict=True))
            try:
                await conn.execute(sql.INSERT_JOBS, *columns, timeout=self.timeout_s)
            except asyncpg.UniqueViolationError as exc:
                raise DuplicateIdempotencyKeyError(str(exc)) from exc
            edge_columns = [[e.child_id for e in edges], [e.parent_id for e in edges]]
            settled = [edge.settled for edge in edges]
            await conn.execute(sql.INSERT_EDGES, *edge_columns, settled, timeout=self.timeout_s)
        return ready

    async def due_children(self, parent_id: UUID) -> list[Job]:
        return await self._all(sql.DUE_CHILDREN, parent_id)

    async def parent_results(self, child_id: UUID) -> dict[UUID, JSONValue]:
        rows = await self._fetch(sql.PARENT_RESULTS, child_id)
        return {
            UUID(bytes=parent.bytes): json.loads(result)
            if status == "completed" and result
            else None
            for parent, status, result in rows
        }

    async def flow(self, flow_id: UUID) -> tuple[list[Job], list[Edge]]:
        members = await self._all(sql.FLOW_MEMBERS, flow_id)
        rows = await self._fetch(sql.FLOW_EDGES, flow_id) if members else []
        return members, [
            Edge(UUID(bytes=child.bytes), UUID(bytes=parent.bytes), settled)
            for child, parent, settled in rows
        ]

    async def cancel_flow(self, flow_id: UUID) -> list[Job]:
        now = utcnow()
        async with self._connection() as conn, conn.transaction():
            rows = await conn.fetch(sql.CANCEL_FLOW, flow_id, now, timeout=self.timeout_s)
            cancelled = [decode_job(row) for row in rows]
            for job in cancelled:
                if job.has_dependants:
                    await self._pass_on_failure(conn, job.id, JobStatus.CANCELLED, now)
        return cancelled

    async def _pass_on_change(
        self, conn: asyncpg.Connection, parent: Job, plan: UpdatePlan, now: datetime
    ) -> None:
        """A client's change to a parent: a cancel passes on as a failure; a retry (failed
        to pending) re-arms the children its failure cancelled."""
        if parent.status is JobStatus.CANCELLED:
            await self._pass_on_failure(conn, parent.id, JobStatus.CANCELLED, now)
        elif plan.expected_status is JobStatus.FAILED and parent.status is JobStatus.PENDING:
            await self._rearm(conn, parent.id, now)

    async def _pass_on_failure(
        self, conn: asyncpg.Connection, parent_id: UUID, how: JobStatus | None, now: datetime
    ) -> None:
        """``parent_id`` failed for good, was cancelled or (``how`` None) is being deleted:
        its waiting children are cancelled naming it, and theirs after them; children that
        continue count it as finished.

        The children this makes pending are named on the outbox channel, delivered at commit:
        the Redis mode puts them on BullMQ then. The service publishes only a parent's own
        children, which it finds by their edges; a deleted parent's edges are gone, and a
        cancelled child's released children are a generation further."""
        ended: list[tuple[UUID, JobStatus | None]] = [(parent_id, how)]
        released: list[UUID] = []
        while ended:
            parent, status = ended.pop()
            reason = parent_failure_reason(parent, status)
            rows = await conn.fetch(sql.UNSETTLED_CHILDREN, parent, timeout=self.timeout_s)
            for child in map(decode_job, rows):
                effect = effect_on_child(child.status, child.on_parent_failure)
                if effect is ChildEffect.SETTLE:
                    args = (parent, now, child.id)
                    if await conn.fetchval(sql.RELEASE_CHILD, *args, timeout=self.timeout_s):
                        released.append(child.id)
                elif effect is ChildEffect.CANCEL:
                    args4 = (child.id, parent, reason, now)
                    await conn.execute(sql.CANCEL_FOR_PARENT, *args4, timeout=self.timeout_s)
                    if child.has_dependants:
                        ended.append((child.id, JobStatus.CANCELLED))
        if released:
            await conn.execute(sql.NOTIFY_OUTBOX, released, timeout=self.timeout_s)

    async def _rearm(self, conn: asyncpg.Connection, parent_id: UUID, now: datetime) -> None:
        """The children (and theirs) that ``parent_id``'s failure cancelled wait again."""
        parents = [parent_id]
        while parents:
            rows = await conn.fetch(sql.REARM_CHILDREN, parents.pop(), now, timeout=self.timeout_s)
            parents.extend(UUID(bytes=row[0].bytes) for row in rows if row[1])

    def listen(self, on_notify: Callable[[], None]) -> AbstractAsyncContextManager[None]:
        """Call ``on_notify`` whenever any process makes a job pending."""
        return listening(self.dsn, sql.CHANNEL, on_notify)

    def listen_outbox(self, on_payload: Callable[[str], None]) -> AbstractAsyncContextManager[None]:
        """Call ``on_payload`` with the ids (comma-separated) of jobs that applications
        committed with ``jobqueue.enqueue``; an empty payload on every (re)connection."""
        return listening_to_payloads(self.dsn, sql.OUTBOX_CHANNEL, on_payload)

    async def pending_among(self, job_ids: Sequence[UUID]) -> list[Job]:
        """Those of the jobs that are pending."""
        return await self._all(sql.PENDING_AMONG, list(job_ids))

    async def ping(self) -> None:
        await self._fetch("SELECT 1")

    async def close(self) -> None:
        for shared in (self._inserts, self._starts, self._completions):
            await shared.drain()  # writes already promised to their callers
        if self._pool is not None:
            pool, self._pool = self._pool, None
            with contextlib.suppress(*_UNAVAILABLE):
                await asyncio.wait_for(pool.close(), self.timeout_s)

    async def _one(self, statement: str, *args: Any) -> Job | None:
        rows = await self._fetch(statement, *args)
        return decode_job(rows[0]) if rows else None

    async def _all(self, statement: str, *args: Any) -> list[Job]:
        return [decode_job(row) for row in await self._fetch(statement, *args)]

    async def _fetch(self, statement: str, *args: Any) -> list[Record]:
        async with self._connection() as conn:
            rows: list[Record] = await conn.fetch(statement, *args, timeout=self.timeout_s)
            return rows

    async def _execute(self, statement: str, *args: Any) -> None:
        async with self._connection() as conn:
            await conn.execute(statement, *args, timeout=self.timeout_s)

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection, waited for at most DB_TIMEOUT_MS; outages become the store's
        StoreUnavailableError."""
        try:
            pool = self._pool or await self._open()
            async with pool.acquire(timeout=self.timeout_s) as conn:
                yield conn
        except _UNAVAILABLE as exc:
            raise StoreUnavailableError(f"PostgreSQL: {type(exc).__name__}: {exc}") from exc
        except asyncpg.DataError as exc:
            # Class 22 (data exception): a value of the request, not the database, is at fault.
            raise UnstorableValueError(f"a value cannot be stored: {exc}") from exc

    async def _open(self) -> asyncpg.Pool:
        async with self._opening:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self.dsn,
                    min_size=min(2, self.pool_size),
                    max_size=self.pool_size,
                    timeout=self.timeout_s,
                    command_timeout=self.timeout_s * 2,
                    server_settings=_SESSION_SETTINGS,
                    reset=_reset_cheaply,
                )
            return self._pool


async def _reset_cheaply(conn: asyncpg.Connection) -> None:
    """Every statement of this store is one implicit transaction, with no cursor, lock or
    LISTEN left behind, so asyncpg's default reset on release (a round trip each time)
    has nothing to undo; only an interrupted transaction needs rolling back."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def _room(
    conn: asyncpg.Connection, job_type: str, limit: TypeLimit, now: datetime, timeout_s: float
) -> int:
    """Under the type's lock: how many more jobs of ``job_type`` may start now."""
    await conn.execute(sql.LOCK_TYPE, job_type, timeout=timeout_s)
    running = 0
    if limit.concurrency is not None:
        running = await conn.fetchval(sql.RUNNING_OF_TYPE, job_type, timeout=timeout_s)
    started = 0
    if limit.rate is not None:
        since = now - timedelta(seconds=RATE_WINDOW_S)
        started = await conn.fetchval(sql.STARTS_SINCE, job_type, since, timeout=timeout_s)
    return limit.room(running, started)


async def _note_starts(
    conn: asyncpg.Connection, job_type: str, limit: TypeLimit, count: int, now: datetime
) -> None:
    """Count ``count`` starts for a rate-limited type, and forget those of long ago."""
    if limit.rate is None or count == 0:
        return
    await conn.execute(sql.NOTE_STARTS, job_type, now, count)
    await conn.execute(sql.FORGET_STARTS, job_type, now - timedelta(minutes=1))


def _held(job: Job) -> tuple[UUID, str | None, datetime]:
    return job.id, job.lease_owner, utcnow()


def _ended(job: Job, attempt: Attempt) -> tuple[UUID, str | None, datetime, str]:
    """$1 to $4 of every outcome: the held job, now, and the ended attempt for the history."""
    return job.id, job.lease_owner, utcnow(), _json(attempt_record(attempt))


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def encode_job(job: Job) -> tuple[Any, ...]:
    """A new job's INSERT_JOBS values, in ``INSERT_COLUMNS`` order."""
    return (
        job.id,
        job.type,
        _json(job.payload),
        job.status.value,
        job.attempts,
        job.max_attempts,
        job.priority,
        job.next_run_at,
        job.last_error,
        job.idempotency_key,
        job.lease_owner,
        job.lease_expires_at,
        job.created_at,
        job.updated_at,
        job.request_fingerprint,
        job.pending_parents,
        job.has_dependants,
        job.flow_id,
        job.on_parent_failure.value,
        job.cancelled_by_parent,
        job.flow_key,
    )


def _uuid(value: Any) -> UUID | None:
    """asyncpg's UUID (a subclass of its own) as the standard library's."""
    return None if value is None else UUID(bytes=value.bytes)


_STATUSES = {status.value: status for status in JobStatus}
_PARENT_FAILURE_RULES = {rule.value: rule for rule in OnParentFailure}
"""The enums by their text: a look-up costs a twentieth of the enum's own call (every
completion decodes its row, so this pays for the workflow columns)."""


def decode_job(row: Record) -> Job:
    """A job from a record in ``JOB_COLUMNS`` order."""
    return Job(
        id=UUID(bytes=row[0].bytes),
        type=row[1],
        payload=json.loads(row[2]),
        status=_STATUSES[row[3]],
        attempts=row[4],
        max_attempts=row[5],
        priority=row[6],
        next_run_at=row[7],
        last_error=row[8],
        idempotency_key=row[9],
        lease_owner=row[10],
        lease_expires_at=row[11],
        created_at=row[12],
        updated_at=row[13],
        request_fingerprint=row[14],
        pending_parents=row[15],
        has_dependants=row[16],
        flow_id=_uuid(row[17]),
        on_parent_failure=_PARENT_FAILURE_RULES[row[18]],
        cancelled_by_parent=_uuid(row[19]),
        flow_key=row[20],
        result=None if row[21] is None else json.loads(row[21]),
        progress=row[22],
        progress_message=row[23],
    )


def _decode_dead_letter(row: Record) -> DeadLetter:
    return DeadLetter(UUID(bytes=row[0].bytes), row[1], json.loads(row[2]), row[3], row[4], row[5])


def _completions(rows: Sequence[asyncpg.Record], at: datetime) -> dict[UUID, Completed]:
    """COMPLETE_MANY's rows by job id."""
    return {UUID(bytes=row[0].bytes): (at, CompletionRead(row[1], row[2], row[3])) for row in rows}
