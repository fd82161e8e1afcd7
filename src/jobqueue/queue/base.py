"""The queue interface every mode implements."""

from __future__ import annotations

import abc
from collections.abc import Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from jobqueue.domain.jobs import DeadLetter, Job, JobFilter
from jobqueue.domain.limits import TypeLimit
from jobqueue.domain.outcome import Outcome


class Leases(Protocol):
    """The part of the store a consumer uses to hold jobs while they run.

    Consumers take, keep and give back leases through this alone; every outcome of an
    attempt is recorded by the service (through the ``JobRunner``).
    """

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
        processes."""
        ...

    async def start_limited(
        self, job_id: UUID, owner: str, lease_until: datetime, due_by: datetime, limit: TypeLimit
    ) -> Job | None:
        """As ``start``, for a job of a limited type; TypeLimitReachedError when the limit
        leaves no room now."""
        ...

    async def get(self, job_id: UUID) -> Job | None:
        """The job's row as it is now, or None."""
        ...

    async def renew(self, owner: str, job_ids: Sequence[UUID], lease_until: datetime) -> set[UUID]:
        """Extend the leases ``owner`` still holds; returns the ids it still holds."""
        ...

    async def release(self, job: Job) -> Job | None:
        """Hand a job back unfinished, giving back the attempt it had started."""
        ...

    async def next_run_at(self, types: Sequence[str] | None = None) -> datetime | None:
        """The earliest time a scheduled pending job (of ``types``) becomes due."""
        ...

    def listen(self, on_notify: Callable[[], None]) -> AbstractAsyncContextManager[None]:
        """While open, call ``on_notify`` when another process makes a job pending."""
        ...


class JobRunner(Protocol):
    """The worker's side of a consumer: what to do with each delivered job."""

    async def execute(self, job: Job) -> Outcome:
        """Run the job's handler once (this is what WORKER_CONCURRENCY bounds)."""
        ...

    async def record(self, job: Job, outcome: Outcome) -> Job | None:
        """Record what an attempt came to, once.

        Returns the job as recorded (completed, pending for a retry, or failed), or None when
        no outcome could be recorded (lease lost, row deleted): a pushing queue such as BullMQ
        needs it to tell its own retry machinery what happened.
        """
        ...

    async def record_lost_attempt(self, job: Job) -> Job | None:
        """``job`` was delivered again because the worker running it died: record that."""
        ...


class Repairs(Protocol):
    """What a broker's recovery loop may ask of the service (which records every outcome)."""

    async def recover_expired(self, limit: int = 100) -> int:
        """Record a failed attempt for every job whose lease ran out; returns how many."""
        ...

    async def expired_runs(self, limit: int) -> list[Job]:
        """Processing jobs whose lease has run out."""
        ...

    async def record_lost_attempt(self, job: Job) -> Job | None:
        """The worker running ``job`` died: that attempt failed, the retry rule decides."""
        ...

    async def list_jobs(self, query: JobFilter) -> list[Job]:
        """Jobs matching ``query``, newest first."""
        ...

    async def queue_dead_letters(self, limit: int) -> int:
        """Write dead letters still missing from the queue's own DLQ; returns how many."""
        ...


class Consumer(abc.ABC):
    """Delivers claimed jobs to a handler, at most ``concurrency`` at once."""

    @abc.abstractmethod
    async def run(self) -> None:
        """Deliver jobs until ``stop``; return once every running job ended or was handed back."""

    @abc.abstractmethod
    def stop(self, grace_s: float) -> None:
        """Stop claiming; running jobs get ``grace_s`` seconds, then are handed back."""


class Broker(abc.ABC):
    """The trigger side of a queue: what the service tells it when rows change."""

    name: str
    """Shown in the startup line ``Worker started {queue, ...}``."""
    dependency: str | None = None
    """The service this queue needs beyond the database (``redis``), named by /health."""
    keeps_dead_letters: bool = False
    """The queue has a DLQ of its own (BullMQ's `job-dlq`) beside the dead_letters table."""

    @abc.abstractmethod
    async def publish(self, jobs: Sequence[Job]) -> None:
        """Pending jobs were committed: make them runnable at their ``next_run_at``."""

    @abc.abstractmethod
    async def withdraw(self, job_id: UUID) -> None:
        """A job was deleted or cancelled: it must not run."""

    def wake(self) -> None:
        """Another process committed pending jobs: look for them now (table modes)."""

    def also_wake(self, others: Callable[[], None]) -> None:
        """Call ``others`` whenever jobs are published: it wakes consumers in other processes
        that nothing else would wake (table modes; BullMQ wakes its workers itself)."""

    async def publish_dead_letter(self, entry: DeadLetter) -> bool:
        """Write ``entry`` to the queue's own DLQ (the database already holds it); False when
        that failed, so that it is tried again later."""
        del entry
        return True

    async def ping(self) -> None:
        """Raise if the queue's own service does not answer."""

    @abc.abstractmethod
    def consumer(self, runner: JobRunner, concurrency: int) -> Consumer:
        """A consumer that hands this queue's jobs to ``runner``."""

    @abc.abstractmethod
    def recovery(self, repairs: Repairs) -> Coroutine[Any, Any, None]:
        """The loop a worker runs beside its consumer to repair what crashes leave behind."""

    async def close(self) -> None:
        """Release connections."""
