"""The SQLite store: the standard library's ``sqlite3`` on one connection the event loop owns.

A statement takes microseconds, so it runs right on the loop: no thread hop, no pool. The one
connection is the process's only writer, so its transactions never wait for each other; only
another process on the same file can make one wait (up to DB_TIMEOUT_MS, ``busy_timeout``).
WAL checkpoints, which copy pages to the main file, run in a thread on a second connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import structlog

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
from jobqueue.log_throttle import LogThrottle
from jobqueue.store import sqlite_sql as sql
from jobqueue.store.base import (
    DuplicateIdempotencyKeyError,
    StoreUnavailableError,
    TypeLimitReachedError,
)
from jobqueue.store.batching import GroupCommit

log = structlog.get_logger(__name__)

CHECKPOINT_INTERVAL_S = 1.0
"""How often the WAL is copied back into the database file (off the event loop)."""
WAL_LIMIT_BYTES = 16 * 1024 * 1024
"""Above this the checkpoint also restarts the WAL (and truncates its file). Under steady
writes a passive checkpoint never catches up far enough for the WAL to start over, so the
file would grow for as long as the load lasts; the restart makes writers wait briefly."""

Row = tuple[Any, ...]
SqlWrite = Callable[[sqlite3.Connection], Any]
"""Statements to run in a transaction shared with other writes."""
_MAX_BATCH = 500
_COMMIT_WATCH_S = 0.1
"""How often an idle worker asks whether another connection committed a job: every wake-up
of an idle process costs about 0.02% of a core here (a 50 Hz timer alone took 1%), so 10 a
second keep an idle server under its 1% while a job from elsewhere waits 50 ms on average."""


class SqliteJobStore:
    """JobStore on a SQLite file through ``sqlite3``, every call made on the event loop."""

    def __init__(self, path: str, *, timeout_s: float = 5.0) -> None:
        """Opens nothing until the first call; ``timeout_s`` bounds waits for another process."""
        self.path = path
        self.timeout_s = timeout_s
        self._conn: sqlite3.Connection | None = None
        self._checkpoints: asyncio.Task[None] | None = None
        self._checkpoint_failures = LogThrottle()
        # Writes made in the same turn of the event loop share a transaction: a commit
        # costs more than the statements it holds (51 against 14.5 us for an insert).
        self._writes: GroupCommit[SqlWrite, int, Any] = GroupCommit(
            self._write_together, key=id, max_batch=_MAX_BATCH
        )

    async def insert(self, new_jobs: Sequence[Job]) -> list[Job]:
        rows = [encode_job(job) for job in new_jobs]
        if len(new_jobs) == 1 and new_jobs[0].idempotency_key is None:
            # Nothing can conflict without a key: share a commit with concurrent creates.
            await self._writes.submit(lambda conn: conn.execute(sql.INSERT_JOB, rows[0]))
        else:
            with self._transaction() as conn:
                conn.executemany(sql.INSERT_JOB, rows)
        return list(new_jobs)

    async def get(self, job_id: UUID) -> Job | None:
        return self._one(sql.GET_JOB, (job_id.hex,))

    async def find_by_idempotency_keys(self, keys: Collection[str]) -> list[Job]:
        return self._all(sql.JOBS_BY_IDEMPOTENCY_KEYS, (json.dumps(list(keys)),))

    async def list_jobs(self, query: JobFilter) -> list[Job]:
        status = None if query.status is None else query.status.value
        params = {"status": status, "type": query.type, "limit": query.limit}
        return self._all(sql.LIST_JOBS, {**params, "offset": query.offset})

    async def count_by_status(self) -> dict[JobStatus, int]:
        rows = self._rows(sql.COUNT_BY_STATUS, ())
        return {JobStatus(status): count for status, count in rows}

    async def apply(self, job_id: UUID, plan: UpdatePlan) -> Job | None:
        now = _time(utcnow())
        params = {
            "id": job_id.hex,
            "status": plan.status.value,
            "attempts": plan.attempts,
            "next_run_at": _time(plan.next_run_at),
            "expected_status": plan.expected_status.value,
            "now": now,
        }
        with self._transaction() as conn:
            row = conn.execute(sql.APPLY_PLAN, params).fetchone()
            changed = None if row is None else decode_job(row)
            if changed is not None and changed.has_dependants:
                _pass_on_change(conn, changed, plan, now)
        return changed

    async def oldest_due_pending(self, now: datetime) -> datetime | None:
        [(value,)] = self._rows(sql.OLDEST_DUE_PENDING, {"now": _time(now)})
        return _parse_time(value)

    async def apply_sweep(self, plan: UpdatePlan, sweep: Sweep) -> list[Job]:
        now = _time(utcnow())
        params = {
            "status": plan.status.value,
            "attempts": plan.attempts,
            "next_run_at": _time(plan.next_run_at),
            "now": now,
            "expected_status": plan.expected_status.value,
            "type": sweep.job_type,
            "created_by": _time(sweep.created_by),
            "after_created": _time(sweep.after_created),
            "after_id": sweep.after_id.hex,
            "limit": sweep.limit,
        }
        with self._transaction() as conn:
            changed = [decode_job(row) for row in conn.execute(sql.APPLY_PLAN_TO_SWEEP, params)]
            for job in changed:
                if job.has_dependants:
                    _pass_on_change(conn, job, plan, now)
        return changed

    async def delete(self, job_id: UUID) -> Job | None:
        with self._transaction() as conn:
            row = conn.execute(sql.GET_JOB, (job_id.hex,)).fetchone()
            if row is not None and decode_job(row).has_dependants:
                _pass_on_failure(conn, job_id, None, _time(utcnow()))
            row = conn.execute(sql.DELETE_JOB, (job_id.hex,)).fetchone()
        return None if row is None else decode_job(row)

    async def claim(
        self, owner: str, limit: int, lease_until: datetime, types: Sequence[str] | None = None
    ) -> list[Job]:
        params = {
            "owner": owner,
            "lease_until": _time(lease_until),
            "now": _time(utcnow()),
            "types": None if types is None else json.dumps(list(types)),
            "limit": limit,
        }
        claimed = self._all(sql.CLAIM_DUE, params)
        return sorted(claimed, key=lambda job: (job.priority, job.created_at))

    async def claim_limited(
        self, owner: str, job_type: str, limit: TypeLimit, want: int, lease_until: datetime
    ) -> list[Job]:
        now = utcnow()
        with self._transaction() as conn:  # the file's only writer meanwhile: no other lock
            room = min(want, _room(conn, job_type, limit, now))
            if room <= 0:
                return []
            params = {"owner": owner, "lease_until": _time(lease_until), "now": _time(now)}
            types = json.dumps([job_type])
            rows = conn.execute(sql.CLAIM_DUE, {**params, "types": types, "limit": room})
            claimed = [decode_job(row) for row in rows.fetchall()]
            _note_starts(conn, job_type, limit, len(claimed), now)
        return sorted(claimed, key=lambda job: (job.priority, job.created_at))

    async def start_limited(
        self, job_id: UUID, owner: str, lease_until: datetime, due_by: datetime, limit: TypeLimit
    ) -> Job | None:
        now = utcnow()
        with self._transaction() as conn:
            row = conn.execute(sql.GET_JOB, (job_id.hex,)).fetchone()
            if row is None:
                return None
            job_type = decode_job(row).type
            if _room(conn, job_type, limit, now) <= 0:
                raise TypeLimitReachedError(f"job type {job_type!r} is at its limit")
            params = {"id": job_id.hex, "owner": owner, "lease_until": _time(lease_until)}
            params |= {"due_by": _time(due_by), "now": _time(now)}
            started = conn.execute(sql.START_DUE, params).fetchone()
            if started is not None:
                _note_starts(conn, job_type, limit, 1, now)
        return None if started is None else decode_job(started)

    async def start(
        self, job_id: UUID, owner: str, lease_until: datetime, due_by: datetime
    ) -> Job | None:
        params = {"id": job_id.hex, "owner": owner, "lease_until": _time(lease_until)}
        return self._one(sql.START_DUE, {**params, "due_by": _time(due_by), "now": _time(utcnow())})

    async def renew(self, owner: str, job_ids: Sequence[UUID], lease_until: datetime) -> set[UUID]:
        if not job_ids:
            return set()
        ids = json.dumps([job_id.hex for job_id in job_ids])
        params = {"ids": ids, "owner": owner, "lease_until": _time(lease_until)}
        return {UUID(hex=row[0]) for row in self._rows(sql.RENEW_LEASES, params)}

    async def complete(self, job: Job, attempt: Attempt, result: JSONValue = None) -> Job | None:
        now = utcnow()
        encoded = None if result is None else _json(result)
        params = {**_ended(job, attempt), "now": _time(now), "result": encoded}
        row = await self._writes.submit(lambda conn: _completed(conn, params))
        return None if row is None else completed(job, result, now, CompletionRead(*row[1:]))

    async def schedule_retry(
        self, job: Job, run_at: datetime, error: str, attempt: Attempt
    ) -> Job | None:
        params = {**_ended(job, attempt), "run_at": _time(run_at), "error": error}
        return self._one(sql.SCHEDULE_RETRY, params)

    async def fail(
        self, job: Job, reason: str, attempt: Attempt, *, queue_pending: bool = False
    ) -> tuple[Job, DeadLetter] | None:
        with self._transaction() as conn:
            row = conn.execute(sql.FAIL, {**_ended(job, attempt), "error": reason}).fetchone()
            if row is None:
                return None
            failed = decode_job(row)
            entry = DeadLetter.of_failed(failed, reason)
            conn.execute(sql.INSERT_DEAD_LETTER, (*_encode_dead_letter(entry), queue_pending))
            if failed.has_dependants:
                _pass_on_failure(conn, failed.id, JobStatus.FAILED, _time(failed.updated_at))
        return failed, entry

    async def cancelled_among(self, job_ids: Sequence[UUID]) -> set[UUID]:
        ids = json.dumps([job_id.hex for job_id in job_ids])
        return {UUID(hex=row[0]) for row in self._rows(sql.CANCELLED_AMONG, {"ids": ids})}

    async def end_cancelled(self, job: Job, attempt: Attempt) -> Job | None:
        with self._transaction() as conn:
            row = conn.execute(sql.END_CANCELLED, _ended(job, attempt)).fetchone()
        return None if row is None else decode_job(row)

    async def prune(self, before: datetime, limit: int) -> int:
        with self._transaction() as conn:
            deleted: int = conn.execute(
                sql.PRUNE, {"before": _time(before), "limit": limit}
            ).rowcount
        return deleted

    async def set_progress(self, reports: Sequence[ProgressReport]) -> None:
        rows = [
            {"id": r.job_id.hex, "owner": r.owner, "percent": r.percent, "message": r.message}
            for r in reports
        ]
        await self._writes.submit(lambda conn: conn.executemany(sql.SET_PROGRESS, rows))

    async def attempts(self, job_id: UUID) -> list[Attempt] | None:
        rows = self._rows(sql.ATTEMPT_LOG, (job_id.hex,))
        if not rows:
            return None
        return [attempt_from_record(job_id, record) for record in json.loads(rows[0][0])]

    async def release(self, job: Job) -> Job | None:
        return self._one(sql.RELEASE, _held(job))

    async def expired(self, now: datetime, limit: int) -> list[Job]:
        return self._all(sql.EXPIRED_LEASES, (_time(now), limit))

    async def next_run_at(self, types: Sequence[str] | None = None) -> datetime | None:
        wanted = None if types is None else json.dumps(list(types))
        [(value,)] = self._rows(sql.NEXT_RUN_AT, {"types": wanted})
        return _parse_time(value)

    async def dead_letters(self, limit: int, offset: int) -> list[DeadLetter]:
        return [
            _decode_dead_letter(row) for row in self._rows(sql.LIST_DEAD_LETTERS, (limit, offset))
        ]

    async def queue_pending_dead_letters(self, limit: int) -> list[DeadLetter]:
        rows = self._rows(sql.QUEUE_PENDING_DEAD_LETTERS, (limit,))
        return [_decode_dead_letter(row) for row in rows]

    async def dead_letter_queued(self, entry: DeadLetter) -> None:
        with self._transaction() as conn:
            conn.execute(sql.DEAD_LETTER_QUEUED, (entry.job_id.hex, _time(entry.failed_at)))

    async def insert_with_parents(
        self, new_jobs: Sequence[Job], parents_of: Mapping[UUID, Sequence[UUID]]
    ) -> list[Job]:
        named = {parent for parents in parents_of.values() for parent in parents}
        outside = sorted(named - {job.id for job in new_jobs})
        with self._transaction() as conn:
            existing: dict[UUID, JobStatus] = {}
            if outside:
                ids = json.dumps([parent.hex for parent in outside])
                rows = conn.execute(sql.MARK_PARENTS, {"ids": ids}).fetchall()
                existing = {UUID(hex=row[0]): JobStatus(row[1]) for row in rows}
            ready, edges = arrivals(new_jobs, parents_of, existing)
            conn.executemany(sql.INSERT_JOB, [encode_job(job) for job in ready])
            conn.executemany(sql.INSERT_EDGE, [_encode_edge(edge) for edge in edges])
        return ready

    async def due_children(self, parent_id: UUID) -> list[Job]:
        return self._all(sql.DUE_CHILDREN, (parent_id.hex,))

    async def parent_results(self, child_id: UUID) -> dict[UUID, JSONValue]:
        rows = self._rows(sql.PARENT_RESULTS, (child_id.hex,))
        return {
            UUID(hex=parent): _json_value(result) if status == "completed" else None
            for parent, status, result in rows
        }

    async def flow(self, flow_id: UUID) -> tuple[list[Job], list[Edge]]:
        members = self._all(sql.FLOW_MEMBERS, (flow_id.hex,))
        rows = self._rows(sql.FLOW_EDGES, (flow_id.hex,)) if members else []
        return members, [Edge(UUID(hex=c), UUID(hex=p), bool(done)) for c, p, done in rows]

    async def cancel_flow(self, flow_id: UUID) -> list[Job]:
        now = _time(utcnow())
        with self._transaction() as conn:
            rows = conn.execute(sql.CANCEL_FLOW, {"flow": flow_id.hex, "now": now}).fetchall()
            cancelled = [decode_job(row) for row in rows]
            for job in cancelled:
                if job.has_dependants:
                    _pass_on_failure(conn, job.id, JobStatus.CANCELLED, now)
        return cancelled

    def listen(self, on_notify: Callable[[], None]) -> AbstractAsyncContextManager[None]:
        """Call ``on_notify`` when another connection commits: an API or worker in another
        process, or an application's transactional enqueue (this process's own creates wake
        its worker directly)."""
        return self._watching_commits(on_notify)

    @contextlib.asynccontextmanager
    async def _watching_commits(self, on_notify: Callable[[], None]) -> AsyncIterator[None]:
        task = asyncio.create_task(self._watch_commits(on_notify), name="jobqueue-sqlite-commits")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _watch_commits(self, on_notify: Callable[[], None]) -> None:
        """Ask SQLite every ``_COMMIT_WATCH_S`` whether another connection committed.

        ``PRAGMA data_version`` changes exactly then; on the loop's own connection it costs
        a few microseconds, so SQLite needs no LISTEN to wake a worker within 100 ms.
        """
        seen: int | None = None
        while True:
            with contextlib.suppress(StoreUnavailableError):  # unreadable: the poll runs on
                [(version,)] = self._rows(sql.DATA_VERSION, ())
                if seen is not None and version != seen:
                    on_notify()
                seen = version
            await asyncio.sleep(_COMMIT_WATCH_S)

    async def ping(self) -> None:
        self._rows("SELECT 1", ())

    async def close(self) -> None:
        await self._writes.drain()  # writes already promised to their callers
        if self._checkpoints is not None:
            self._checkpoints.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checkpoints
            self._checkpoints = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def _write_together(self, writes: Sequence[SqlWrite]) -> dict[int, Any]:
        """Every write in one transaction; each one's result by its ``id``."""
        with self._transaction() as conn:
            return {id(write): write(conn) for write in writes}

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = _connect(self.path, self.timeout_s)
            for pragma in sql.CONFIGURE:
                self._conn.execute(pragma)
            self._checkpoints = asyncio.get_running_loop().create_task(
                self._checkpoint_forever(), name="jobqueue-sqlite-checkpoint"
            )
        return self._conn

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT: several statements as one (no await happens inside)."""
        with _translated():
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    def _rows(self, statement: str, params: Sequence[Any] | dict[str, Any]) -> list[Row]:
        with _translated():
            return self._connection().execute(statement, params).fetchall()

    def _one(self, statement: str, params: Sequence[Any] | dict[str, Any]) -> Job | None:
        rows = self._rows(statement, params)
        return decode_job(rows[0]) if rows else None

    def _all(self, statement: str, params: Sequence[Any] | dict[str, Any]) -> list[Job]:
        return [decode_job(row) for row in self._rows(statement, params)]

    async def _checkpoint_forever(self) -> None:
        while True:
            await asyncio.sleep(CHECKPOINT_INTERVAL_S)
            try:
                await asyncio.to_thread(_checkpoint, self.path, self.timeout_s)
            except sqlite3.Error as exc:
                failed = "WAL checkpoint failed; will try again"
                self._checkpoint_failures.log(str(exc), log.warning, failed, error=str(exc))


def _connect(path: str, timeout_s: float) -> sqlite3.Connection:
    # isolation_level=None: autocommit, so a single statement is its own transaction and
    # several statements take the write lock at once with BEGIN IMMEDIATE.
    return sqlite3.connect(path, timeout=timeout_s, isolation_level=None, check_same_thread=False)


def _checkpoint(path: str, timeout_s: float) -> None:
    conn = _connect(path, timeout_s)
    try:
        conn.execute(sql.CHECKPOINT)
        with contextlib.suppress(FileNotFoundError):
            if os.path.getsize(f"{path}-wal") > WAL_LIMIT_BYTES:
                conn.execute(sql.CHECKPOINT_AND_RESTART)
    finally:
        conn.close()


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """The driver's errors as the store's: a taken idempotency key, or a database that is
    locked, full or unreadable (which no retry of the same request fixes at once)."""
    try:
        yield
    except sqlite3.IntegrityError as exc:
        if "idempotency_key" not in str(exc):
            raise
        raise DuplicateIdempotencyKeyError(str(exc)) from exc
    except sqlite3.OperationalError as exc:
        raise StoreUnavailableError(f"SQLite: {exc}") from exc


def _completed(conn: sqlite3.Connection, params: dict[str, Any]) -> Row | None:
    """Record a success; a parent's (``has_dependants``) also releases its children, in the
    same transaction: the one extra statement pair only parents pay."""
    row: Row | None = conn.execute(sql.COMPLETE, params).fetchone()
    if row is not None and row[3]:  # has_dependants
        edges = {"parent": row[0], "now": params["now"]}
        conn.execute(sql.RELEASE_CHILDREN, edges)
        conn.execute(sql.SETTLE_EDGES, edges)
    return row


def _pass_on_change(
    conn: sqlite3.Connection, parent: Job, plan: UpdatePlan, now: str | None
) -> None:
    """A client's change to a parent: a cancel passes on as a failure; a retry (failed to
    pending) re-arms the children its failure cancelled."""
    if parent.status is JobStatus.CANCELLED:
        _pass_on_failure(conn, parent.id, JobStatus.CANCELLED, now)
    elif plan.expected_status is JobStatus.FAILED and parent.status is JobStatus.PENDING:
        _rearm(conn, parent.id, now)


def _pass_on_failure(
    conn: sqlite3.Connection, parent_id: UUID, how: JobStatus | None, now: str | None
) -> None:
    """``parent_id`` failed for good, was cancelled or (``how`` None) is being deleted: its
    waiting children are cancelled naming it, and theirs after them; children that continue
    count it as finished."""
    ended: list[tuple[UUID, JobStatus | None]] = [(parent_id, how)]
    while ended:
        parent, status = ended.pop()
        reason = parent_failure_reason(parent, status)
        for row in conn.execute(sql.UNSETTLED_CHILDREN, {"parent": parent.hex}).fetchall():
            child = decode_job(row)
            edge = {"child": child.id.hex, "parent": parent.hex, "now": now}
            effect = effect_on_child(child.status, child.on_parent_failure)
            if effect is ChildEffect.SETTLE:
                conn.execute(sql.RELEASE_CHILD, edge)
                conn.execute(sql.SETTLE_EDGE, edge)
            elif effect is ChildEffect.CANCEL:
                conn.execute(sql.CANCEL_FOR_PARENT, {**edge, "reason": reason})
                if child.has_dependants:
                    ended.append((child.id, JobStatus.CANCELLED))


def _rearm(conn: sqlite3.Connection, parent_id: UUID, now: str | None) -> None:
    """The children (and their children) that ``parent_id``'s failure cancelled wait again."""
    parents = [parent_id]
    while parents:
        params = {"parent": parents.pop().hex, "now": now}
        for child, has_dependants in conn.execute(sql.REARM_CHILDREN, params).fetchall():
            if has_dependants:
                parents.append(UUID(hex=child))


def _encode_edge(edge: Edge) -> Row:
    return (edge.child_id.hex, edge.parent_id.hex, edge.settled)


def _ended(job: Job, attempt: Attempt) -> dict[str, Any]:
    """The parameters every outcome shares: the held job, and its attempt for the history."""
    return {**_held(job), "attempt": _json(attempt_record(attempt))}


def _room(conn: sqlite3.Connection, job_type: str, limit: TypeLimit, now: datetime) -> int:
    """How many more jobs of ``job_type`` may start now under ``limit``."""
    running = 0
    if limit.concurrency is not None:
        [(running,)] = conn.execute(sql.RUNNING_OF_TYPE, {"type": job_type}).fetchall()
    started = 0
    if limit.rate is not None:
        since = _time(now - timedelta(seconds=RATE_WINDOW_S))
        [(started,)] = conn.execute(sql.STARTS_SINCE, {"type": job_type, "since": since})
    return limit.room(running, started)


def _note_starts(
    conn: sqlite3.Connection, job_type: str, limit: TypeLimit, count: int, now: datetime
) -> None:
    """Count ``count`` starts for a rate-limited type, and forget those of long ago."""
    if limit.rate is None or count == 0:
        return
    conn.executemany(sql.NOTE_START, [{"type": job_type, "now": _time(now)}] * count)
    forget = {"type": job_type, "forget_before": _time(now - timedelta(minutes=1))}
    conn.execute(sql.FORGET_STARTS, forget)


def _held(job: Job) -> dict[str, Any]:
    return {"id": job.id.hex, "owner": job.lease_owner, "now": _time(utcnow())}


def _time(moment: datetime | None) -> str | None:
    """Naive UTC text, the representation of every time column (text order = time order)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _parse_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).replace(tzinfo=UTC)


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def encode_job(job: Job) -> Row:
    """A new job's INSERT_JOB values, in ``INSERT_COLUMNS`` order."""
    return (
        job.id.hex,
        job.type,
        _json(job.payload),
        job.status.value,
        job.attempts,
        job.max_attempts,
        job.priority,
        _time(job.next_run_at),
        job.last_error,
        job.idempotency_key,
        job.lease_owner,
        _time(job.lease_expires_at),
        _time(job.created_at),
        _time(job.updated_at),
        job.request_fingerprint,
        job.pending_parents,
        job.has_dependants,
        None if job.flow_id is None else job.flow_id.hex,
        job.on_parent_failure.value,
        None if job.cancelled_by_parent is None else job.cancelled_by_parent.hex,
        job.flow_key,
    )


_STATUSES = {status.value: status for status in JobStatus}
_PARENT_FAILURE_RULES = {rule.value: rule for rule in OnParentFailure}
"""The enums by their text: a look-up costs a twentieth of the enum's own call (every
completion decodes its row, so this pays for the workflow columns)."""


def decode_job(row: Row) -> Job:
    """A job from a row in ``JOB_COLUMNS`` order."""
    return Job(
        id=UUID(hex=row[0]),
        type=row[1],
        payload=json.loads(row[2]),
        status=_STATUSES[row[3]],
        attempts=row[4],
        max_attempts=row[5],
        priority=row[6],
        next_run_at=_parse_time(row[7]),
        last_error=row[8],
        idempotency_key=row[9],
        lease_owner=row[10],
        lease_expires_at=_parse_time(row[11]),
        created_at=datetime.fromisoformat(row[12]).replace(tzinfo=UTC),
        updated_at=datetime.fromisoformat(row[13]).replace(tzinfo=UTC),
        request_fingerprint=row[14],
        pending_parents=row[15],
        has_dependants=bool(row[16]),
        flow_id=None if row[17] is None else UUID(hex=row[17]),
        on_parent_failure=_PARENT_FAILURE_RULES[row[18]],
        cancelled_by_parent=None if row[19] is None else UUID(hex=row[19]),
        flow_key=row[20],
        result=_json_value(row[21]),
        progress=row[22],
        progress_message=row[23],
    )


def _json_value(stored: Any) -> JSONValue:
    """A JSON column's value. The column's declared type (JSON) has numeric affinity in
    SQLite, so a result that is a JSON number comes back as a number, not as its text."""
    if stored is None or not isinstance(stored, str):
        return stored
    return json.loads(stored)


def _encode_dead_letter(entry: DeadLetter) -> Row:
    return (
        entry.job_id.hex,
        entry.type,
        _json(entry.payload),
        entry.reason,
        entry.attempts,
        _time(entry.failed_at),
    )


def _decode_dead_letter(row: Row) -> DeadLetter:
    failed_at = datetime.fromisoformat(row[5]).replace(tzinfo=UTC)
    return DeadLetter(UUID(hex=row[0]), row[1], json.loads(row[2]), row[3], row[4], failed_at)
