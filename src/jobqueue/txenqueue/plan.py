"""The statements of one enqueue, worked out apart from any driver.

The same plan runs on a blocking connection and on an async one: first the look-up of the
idempotency keys' holders (when the jobs carry keys), then the writes. The statement texts
are the stores' own (``store/sqlite_sql.py``, ``store/postgres_sql.py``), and so are the
row encoders. sqlite3 and asyncpg take those statements as they are written (qmark on SQLite,
``$n`` on PostgreSQL); the psycopg drivers get them through ``pyformat.to_pyformat``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from uuid import UUID

from jobqueue.domain.errors import IdempotencyConflictError, JobQueueError
from jobqueue.domain.jobs import Job, NewJob, build_job, is_same_request, utcnow
from jobqueue.store import postgres_sql, sqlite_sql
from jobqueue.txenqueue.requests import default_max_attempts

Dialect = Literal["sqlite", "postgresql"]
Params = tuple[Any, ...] | list[tuple[Any, ...]]
"""One statement's parameters (a tuple), or a list of them for an ``executemany``."""

_UNIQUE_VIOLATION = "23505"
_MAX_WRAPPING = 4
"""SQLAlchemy's error wraps its dialect's, which wraps the driver's."""


class IdempotencyKeyTakenError(JobQueueError):
    """A concurrent transaction inserted a job with the same idempotency key first.

    On PostgreSQL the application's transaction is aborted by the failed insert: roll it
    back and run it again; the second run finds the first job and returns its id.
    """


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement for the application's connection."""

    sql: str
    params: Params

    @property
    def many(self) -> bool:
        """Run once per parameter tuple (``executemany``)."""
        return isinstance(self.params, list)


class EnqueuePlan:
    """One ``enqueue_many``: read who holds the keys, then write the new rows (and, on
    PostgreSQL, the notifications that wake workers when the transaction commits)."""

    def __init__(self, dialect: Dialect, requests: Sequence[NewJob]) -> None:
        self.dialect = dialect
        self.requests = requests
        self.ids: list[UUID] = []
        """Each request's job id, in order, once ``writes`` has run."""

    def key_lookup(self) -> Statement | None:
        """The look-up of the jobs holding the requests' idempotency keys, if any has one."""
        keys = sorted({new.idempotency_key for new in self.requests if new.idempotency_key})
        if not keys:
            return None
        if self.dialect == "sqlite":
            return Statement(sqlite_sql.KEY_HOLDERS, (json.dumps(keys),))
        return Statement(postgres_sql.KEY_HOLDERS, (keys,))

    def writes(self, holders: Iterable[Sequence[Any]]) -> list[Statement]:
        """The inserts of the jobs whose key nobody holds (``holders``: the look-up's rows)."""
        fresh = self._fresh_jobs(holders)
        if not fresh:
            return []
        if self.dialect == "sqlite":
            from jobqueue.store.sqlite import encode_job

            return [Statement(sqlite_sql.INSERT_JOB, [encode_job(job) for job in fresh])]
        from jobqueue.store.postgres import encode_job as encode_pg

        columns = tuple(zip(*(encode_pg(job) for job in fresh), strict=True))
        return [
            Statement(postgres_sql.INSERT_JOBS, columns),
            Statement(postgres_sql.NOTIFY_OUTBOX, ([job.id for job in fresh],)),
        ]

    def _fresh_jobs(self, holders: Iterable[Sequence[Any]]) -> list[Job]:
        """Build a job per request, except where a job (stored, or earlier in this batch)
        holds its key: that job's id answers, as the API answers a repeated key."""
        taken = {key: (UUID(str(job_id)), made_by) for key, job_id, made_by in holders}
        now = utcnow()
        fresh: list[Job] = []
        for new in self.requests:
            key = new.idempotency_key
            if key is not None and key in taken:
                job_id, made_by = taken[key]
                if not is_same_request(made_by, new):
                    raise IdempotencyConflictError(key, job_id)
                self.ids.append(job_id)
                continue
            job = build_job(new, now, default_max_attempts(new.type))
            fresh.append(job)
            self.ids.append(job.id)
            if key is not None:
                taken[key] = (job.id, job.request_fingerprint)
        return fresh


def key_taken(exc: BaseException) -> IdempotencyKeyTakenError | None:
    """The error to raise when ``exc`` (a driver's, perhaps wrapped by SQLAlchemy) is the
    unique violation of an idempotency key; None for any other error."""
    seen: BaseException | None = exc
    for _depth in range(_MAX_WRAPPING):
        if seen is None:
            break
        if _is_unique_violation(seen):
            return IdempotencyKeyTakenError(
                "an idempotency key of these jobs was taken by a concurrent transaction; "
                f"roll back and run the transaction again ({seen})"
            )
        seen = getattr(seen, "orig", None) or seen.__cause__
    return None


def _is_unique_violation(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.IntegrityError):
        return "UNIQUE" in str(exc)
    # asyncpg and psycopg 3 name the SQLSTATE ``sqlstate``; psycopg2 names it ``pgcode``.
    code = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    return code == _UNIQUE_VIOLATION
