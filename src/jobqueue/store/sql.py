"""The SQLAlchemy store: all SQL of jobqueue lives in this module."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from jobqueue.domain.changes import UpdatePlan
from jobqueue.domain.jobs import DeadLetter, Job, JobFilter, JobStatus, utcnow
from jobqueue.store.base import DuplicateIdempotencyKeyError
from jobqueue.store.batching import GroupCommit
from jobqueue.store.engine import writer
from jobqueue.store.listen import CHANNEL, listening
from jobqueue.store.tables import dead_letters, jobs

_MAX_BATCH = 500
_PENDING = JobStatus.PENDING.value
_PROCESSING = JobStatus.PROCESSING.value


class SqlJobStore:
    """JobStore on SQLite or PostgreSQL through SQLAlchemy's async engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._writer = writer(engine)
        self._inserts: GroupCommit[Job, UUID, Job] = GroupCommit(
            self._insert_many, key=lambda job: job.id, max_batch=_MAX_BATCH
        )
        self._completions: GroupCommit[Job, UUID, Job] = GroupCommit(
            self._complete_many, key=lambda job: job.id, max_batch=_MAX_BATCH
        )

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    async def insert(self, new_jobs: Sequence[Job]) -> list[Job]:
        if len(new_jobs) == 1 and new_jobs[0].idempotency_key is None:
            # Single creates from concurrent requests share a transaction. Without an
            # idempotency key nothing can conflict, so one row cannot fail the others.
            await self._inserts.submit(new_jobs[0])
            return list(new_jobs)
        await self._insert_many(new_jobs)
        return list(new_jobs)

    async def _insert_many(self, new_jobs: Sequence[Job]) -> dict[UUID, Job]:
        rows = [_row_values(job) for job in new_jobs]
        try:
            async with self._writer.begin() as conn:
                await conn.execute(sa.insert(jobs), rows)
                await self._notify(conn)
        except IntegrityError as exc:
            raise DuplicateIdempotencyKeyError(str(exc.orig)) from exc
        return {job.id: job for job in new_jobs}

    async def get(self, job_id: UUID) -> Job | None:
        return await self._one(sa.select(jobs).where(jobs.c.id == job_id))

    async def find_by_idempotency_keys(self, keys: Collection[str]) -> list[Job]:
        return await self._many(sa.select(jobs).where(jobs.c.idempotency_key.in_(list(keys))))

    async def list_jobs(self, query: JobFilter) -> list[Job]:
        stmt = sa.select(jobs)
        if query.status is not None:
            stmt = stmt.where(jobs.c.status == query.status.value)
        if query.type is not None:
            stmt = stmt.where(jobs.c.type == query.type)
        stmt = stmt.order_by(jobs.c.created_at.desc(), jobs.c.id.desc())
        return await self._many(stmt.limit(query.limit).offset(query.offset))

    async def count_by_status(self) -> dict[JobStatus, int]:
        stmt = sa.select(jobs.c.status, sa.func.count()).group_by(jobs.c.status)
        async with self.engine.connect() as conn:
            result = await conn.execute(stmt)
            return {JobStatus(status): count for status, count in result.all()}

    async def apply(self, job_id: UUID, plan: UpdatePlan) -> Job | None:
        values: dict[str, Any] = {
            "status": plan.status.value,
            "attempts": plan.attempts,
            "next_run_at": plan.next_run_at,
            "updated_at": utcnow(),
        }
        condition = sa.and_(jobs.c.id == job_id, jobs.c.status == plan.expected_status.value)
        notify = plan.status is JobStatus.PENDING
        return await self._update(condition, values, notify=notify)

    async def delete(self, job_id: UUID) -> Job | None:
        stmt = sa.delete(jobs).where(jobs.c.id == job_id).returning(*jobs.c)
        async with self._writer.begin() as conn:
            row = (await conn.execute(stmt)).one_or_none()
        return None if row is None else _to_job(row)

    async def claim(
        self, owner: str, limit: int, lease_until: datetime, types: Sequence[str] | None = None
    ) -> list[Job]:
        now = utcnow()
        due = (
            sa.select(jobs.c.id)
            .where(jobs.c.status == _PENDING)
            .where(sa.or_(jobs.c.next_run_at.is_(None), jobs.c.next_run_at <= now))
            .where(jobs.c.type.in_(types) if types is not None else sa.true())
            .order_by(jobs.c.priority, jobs.c.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        stmt = (
            sa.update(jobs)
            .where(jobs.c.id.in_(due.scalar_subquery()))
            .values(
                status=_PROCESSING,
                attempts=jobs.c.attempts + 1,
                lease_owner=owner,
                lease_expires_at=lease_until,
                next_run_at=None,
                updated_at=now,
            )
            .returning(*jobs.c)
        )
        async with self._writer.begin() as conn:
            claimed = [_to_job(row) for row in (await conn.execute(stmt)).all()]
        return sorted(claimed, key=lambda job: (job.priority, job.created_at))

    async def start(
        self, job_id: UUID, attempt: int, owner: str, lease_until: datetime
    ) -> Job | None:
        runnable = jobs.c.status.in_([_PENDING, _PROCESSING])
        values = {
            "status": _PROCESSING,
            "attempts": attempt,
            "lease_owner": owner,
            "lease_expires_at": lease_until,
            "next_run_at": None,
            "updated_at": utcnow(),
        }
        return await self._update(sa.and_(jobs.c.id == job_id, runnable), values)

    async def renew(self, owner: str, job_ids: Sequence[UUID], lease_until: datetime) -> set[UUID]:
        if not job_ids:
            return set()
        stmt = (
            sa.update(jobs)
            .where(jobs.c.id.in_(job_ids), jobs.c.lease_owner == owner)
            .where(jobs.c.status == _PROCESSING)
            .values(lease_expires_at=lease_until)
            .returning(jobs.c.id)
        )
        async with self._writer.begin() as conn:
            return set((await conn.execute(stmt)).scalars())

    async def complete(self, job: Job) -> Job | None:
        return await self._completions.submit(job)

    async def _complete_many(self, held: Sequence[Job]) -> dict[UUID, Job]:
        """One UPDATE for every job whose worker still holds its lease."""
        pairs = [(job.id, job.lease_owner) for job in held]
        stmt = (
            sa.update(jobs)
            .where(sa.tuple_(jobs.c.id, jobs.c.lease_owner).in_(pairs))
            .where(jobs.c.status == _PROCESSING)
            .values(status=JobStatus.COMPLETED.value, **_lease_cleared())
            .returning(*jobs.c)
        )
        async with self._writer.begin() as conn:
            rows = (await conn.execute(stmt)).all()
        return {job.id: job for job in map(_to_job, rows)}

    async def schedule_retry(self, job: Job, run_at: datetime, error: str) -> Job | None:
        values = {"status": _PENDING, "next_run_at": run_at, "last_error": error}
        return await self._update(_held(job), {**values, **_lease_cleared()})

    async def fail(self, job: Job, reason: str) -> tuple[Job, DeadLetter] | None:
        values = {"status": JobStatus.FAILED.value, "last_error": reason, **_lease_cleared()}
        stmt = sa.update(jobs).where(_held(job)).values(values).returning(*jobs.c)
        async with self._writer.begin() as conn:
            row = (await conn.execute(stmt)).one_or_none()
            if row is None:
                return None
            failed = _to_job(row)
            entry = DeadLetter(
                failed.id, failed.type, failed.payload, reason, failed.attempts, failed.updated_at
            )
            await conn.execute(sa.insert(dead_letters).values(_dead_letter_values(entry)))
        return failed, entry

    async def release(self, job: Job) -> Job | None:
        values = {"status": _PENDING, "attempts": jobs.c.attempts - 1, **_lease_cleared()}
        return await self._update(_held(job), values)

    async def expired(self, now: datetime, limit: int) -> list[Job]:
        stmt = (
            sa.select(jobs)
            .where(jobs.c.status == _PROCESSING, jobs.c.lease_expires_at < now)
            .order_by(jobs.c.lease_expires_at)
            .limit(limit)
        )
        return await self._many(stmt)

    async def next_run_at(self) -> datetime | None:
        stmt = sa.select(sa.func.min(jobs.c.next_run_at)).where(jobs.c.status == _PENDING)
        async with self.engine.connect() as conn:
            value: datetime | None = (await conn.execute(stmt)).scalar_one_or_none()
        return value

    async def dead_letters(self, limit: int, offset: int) -> list[DeadLetter]:
        stmt = (
            sa.select(dead_letters)
            .order_by(dead_letters.c.failed_at.desc(), dead_letters.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_to_dead_letter(row) for row in rows]

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def close(self) -> None:
        await self.engine.dispose()

    def listen(self, on_notify: Callable[[], None]) -> AbstractAsyncContextManager[None]:
        """Call ``on_notify`` whenever another process makes a job pending (PostgreSQL only)."""
        if self.dialect != "postgresql":
            return contextlib.nullcontext()
        return listening(self.engine.url, on_notify)

    async def _notify(self, conn: AsyncConnection) -> None:
        if self.dialect == "postgresql":
            await conn.execute(sa.select(sa.func.pg_notify(CHANNEL, "")))

    async def _update(
        self, condition: sa.ColumnElement[bool], values: dict[str, Any], *, notify: bool = False
    ) -> Job | None:
        stmt = sa.update(jobs).where(condition).values(values).returning(*jobs.c)
        async with self._writer.begin() as conn:
            row = (await conn.execute(stmt)).one_or_none()
            if row is not None and notify:
                await self._notify(conn)
        return None if row is None else _to_job(row)

    async def _one(self, stmt: sa.Select[Any]) -> Job | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(stmt)).one_or_none()
        return None if row is None else _to_job(row)

    async def _many(self, stmt: sa.Select[Any]) -> list[Job]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_to_job(row) for row in rows]


def _held(job: Job) -> sa.ColumnElement[bool]:
    """The job is still processing under the lease this worker took."""
    return sa.and_(
        jobs.c.id == job.id,
        jobs.c.status == _PROCESSING,
        jobs.c.lease_owner == job.lease_owner,
    )


def _lease_cleared() -> dict[str, Any]:
    return {"lease_owner": None, "lease_expires_at": None, "updated_at": utcnow()}


def _row_values(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "type": job.type,
        "payload": job.payload,
        "status": job.status.value,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "priority": job.priority,
        "next_run_at": job.next_run_at,
        "last_error": job.last_error,
        "idempotency_key": job.idempotency_key,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
    }


def _to_job(row: sa.Row[Any]) -> Job:
    m = row._mapping
    return Job(
        id=m["id"],
        type=m["type"],
        payload=m["payload"],
        status=JobStatus(m["status"]),
        attempts=m["attempts"],
        max_attempts=m["max_attempts"],
        next_run_at=m["next_run_at"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        priority=m["priority"],
        last_error=m["last_error"],
        idempotency_key=m["idempotency_key"],
        lease_owner=m["lease_owner"],
        lease_expires_at=m["lease_expires_at"],
    )


def _dead_letter_values(entry: DeadLetter) -> dict[str, Any]:
    return {
        "job_id": entry.job_id,
        "type": entry.type,
        "payload": entry.payload,
        "reason": entry.reason,
        "attempts": entry.attempts,
        "failed_at": entry.failed_at,
    }


def _to_dead_letter(row: sa.Row[Any]) -> DeadLetter:
    m = row._mapping
    return DeadLetter(
        m["job_id"], m["type"], m["payload"], m["reason"], m["attempts"], m["failed_at"]
    )
