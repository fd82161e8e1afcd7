"""BullMQ on Redis as the queue: the Node service's queue `job-queue` and DLQ `job-dlq`.

The row stays the source of truth; a BullMQ job is only the trigger that makes a worker run
it, with the BullMQ job id equal to the row id so that enqueueing is idempotent. All of
BullMQ's camelCase option dictionaries live in this module and ``bullmq_consumer``.

Every Redis call made on a request path is bounded by REDIS_TIMEOUT_MS: with Redis down a
POST still answers (the row is committed; the reconciler enqueues it later) and /health
answers 503 naming redis.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit
from uuid import UUID

import structlog
from bullmq import Queue
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError

from jobqueue.config import Settings
from jobqueue.domain.jobs import DeadLetter, Job, JSONObject, utcnow
from jobqueue.queue.base import Broker, Consumer, JobRunner
from jobqueue.store.base import JobStore

log = structlog.get_logger(__name__)

T = TypeVar("T")

QUEUE_NAME = "job-queue"
DLQ_NAME = "job-dlq"

PRIORITY_OFFSET = 1_000_001
"""Ours run -1,000,000..1,000,000 (lower first); BullMQ's run 1..2**21 (lower first)."""
KEEP_COMPLETED = {"count": 1000}
"""Completed BullMQ jobs kept (the row keeps the outcome; these are for Bull Board)."""
KEEP_FAILED = {"count": 10000}
"""Failed BullMQ jobs kept, long enough to inspect in Bull Board (the DLQ rows keep all)."""

LIVE_STATES = frozenset({"waiting", "prioritized", "delayed", "active", "waiting-children"})
"""BullMQ states in which a job will still run (or is running)."""
FINISHED_STATES = frozenset({"completed", "failed"})
"""States of a BullMQ job that is stored but will not run again: it blocks a new add."""

_STATE_CHUNK = 50  # state look-ups sent at once by the reconciler: bounds open connections


class BullMQBroker(Broker):
    """Publishes rows as BullMQ jobs on `job-queue` and dead letters on `job-dlq`."""

    name = QUEUE_NAME
    dependency = "redis"

    def __init__(self, settings: Settings, store: JobStore) -> None:
        """Connects lazily: nothing touches Redis until the first call."""
        if settings.queue_url is None:
            raise ValueError("BullMQBroker needs REDIS_URL, or REDIS_HOST and REDIS_PORT")
        self.settings = settings
        self.store = store
        self.url = settings.queue_url
        self.timeout_s = settings.redis_timeout_ms / 1000
        self.redis = redis_client(self.url, self.timeout_s)
        self.queue = Queue(QUEUE_NAME, {"connection": self.redis})
        self.dlq = Queue(DLQ_NAME, {"connection": self.redis})
        self._connected_logged = False

    async def publish(self, jobs: Sequence[Job]) -> None:
        """Add a BullMQ job per row (bounded); a finished leftover of the same id goes first.

        BullMQ silently ignores an add whose jobId is still stored, so a row that went back
        to pending (retry, PATCH) would never run again if its completed or failed BullMQ job
        were kept. A delayed one is replaced so that a changed nextRunAt takes effect.
        """
        if jobs:
            await self.bounded(self._enqueue(jobs))

    async def withdraw(self, job_id: UUID) -> None:
        """Remove the job's trigger; a running one is left to its worker, which drops it."""
        try:
            removed = await self.bounded(self.queue.remove(str(job_id)))
        except Exception as exc:
            # Not fatal: a trigger left behind finds its row gone or cancelled and is dropped.
            log.warning("could not remove the queued trigger", job_id=str(job_id), error=str(exc))
            return
        if not removed:
            log.info("trigger is running; its worker will drop it", job_id=str(job_id))

    async def publish_dead_letter(self, entry: DeadLetter) -> None:
        """Add the entry to `job-dlq` as the Node service did; the database already holds it."""
        try:
            await self.bounded(self.dlq.add(entry.type, dead_letter_data(entry)))
        except Exception as exc:
            log.error(
                "could not add the DLQ entry to Redis", job_id=str(entry.job_id), error=str(exc)
            )

    async def ping(self) -> None:
        """Redis PING, bounded by REDIS_TIMEOUT_MS."""
        await self.bounded(self.redis.ping())

    def consumer(self, runner: JobRunner, concurrency: int) -> Consumer:
        """A BullMQ worker on `job-queue` that runs rows through ``runner``."""
        from jobqueue.queue.bullmq_consumer import BullMQConsumer

        return BullMQConsumer(self, runner, concurrency)

    async def live_job_ids(self, job_ids: Sequence[UUID]) -> set[UUID]:
        """The ids among ``job_ids`` whose BullMQ job is waiting, delayed or running."""
        live: set[UUID] = set()
        for start in range(0, len(job_ids), _STATE_CHUNK):
            chunk = job_ids[start : start + _STATE_CHUNK]
            states = await self.bounded(self._states(chunk))
            live.update(
                job_id for job_id, state in zip(chunk, states, strict=True) if state in LIVE_STATES
            )
        return live

    async def close(self) -> None:
        """Close both queues' connection."""
        for queue in (self.queue, self.dlq):
            try:
                await self.bounded(queue.close())
            except Exception as exc:
                log.warning("closing the Redis connection failed", error=str(exc))

    async def bounded(self, call: Awaitable[T]) -> T:
        """Await one Redis call for at most REDIS_TIMEOUT_MS; log the first success."""
        result = await asyncio.wait_for(call, self.timeout_s)
        self.note_connected()
        return result

    def note_connected(self) -> None:
        """Log the Node service's startup line ``Redis connected {host, port}`` once."""
        if not self._connected_logged:
            self._connected_logged = True
            host, port = redis_address(self.url)
            log.info("Redis connected", host=host, port=port)

    async def _enqueue(self, jobs: Sequence[Job]) -> None:
        # A row never changed since its insert has a fresh id: no BullMQ job can exist yet,
        # so a batch create stays one round trip.
        fresh = [job for job in jobs if job.updated_at == job.created_at]
        changed = [job for job in jobs if job.updated_at != job.created_at]
        addable = fresh + await self._make_room(changed)
        if addable:
            await self.queue.addBulk([self._entry(job) for job in addable])

    async def _make_room(self, jobs: Sequence[Job]) -> list[Job]:
        """Remove stored BullMQ jobs that would swallow a new add; return the jobs to add."""
        states = await self._states([job.id for job in jobs])
        addable: list[Job] = []
        for job, state in zip(jobs, states, strict=True):
            if state in LIVE_STATES and state != "delayed":
                continue  # it will run; the worker checks the row's nextRunAt when it does
            if state in FINISHED_STATES or state == "delayed":
                removed = await self.queue.remove(str(job.id))
                if not removed:
                    continue  # picked up meanwhile (locked): it runs, nothing to add
            addable.append(job)
        return addable

    async def _states(self, job_ids: Sequence[UUID]) -> list[str]:
        states = await asyncio.gather(*(self.queue.getJobState(str(i)) for i in job_ids))
        return [str(state) for state in states]

    def _entry(self, job: Job) -> dict[str, Any]:
        return {"name": job.type, "data": job_data(job), "opts": self.job_options(job)}

    def job_options(self, job: Job) -> dict[str, Any]:
        """BullMQ options: attempts and exponential backoff from the same settings as ours."""
        return {
            "jobId": str(job.id),
            "attempts": job.max_attempts,
            "backoff": {"type": "exponential", "delay": self.settings.job_backoff_ms},
            "delay": delay_ms(job.next_run_at),
            "priority": bullmq_priority(job.priority),
            "removeOnComplete": KEEP_COMPLETED,
            "removeOnFail": KEEP_FAILED,
        }


def job_data(job: Job) -> JSONObject:
    """A BullMQ job's data: what the Node service put on the queue, ``{jobId, type, payload}``.

    Node workers and Bull Board written for that service read these keys; our own worker
    reads only the job id and takes everything else from the row.
    """
    return {"jobId": str(job.id), "type": job.type, "payload": job.payload}


def dead_letter_data(entry: DeadLetter) -> JSONObject:
    """A `job-dlq` entry's data, exactly the Node service's six keys."""
    return {
        "jobId": str(entry.job_id),
        "type": entry.type,
        "payload": entry.payload,
        "reason": entry.reason,
        "attempts": entry.attempts,
        "failedAt": iso_ms(entry.failed_at),
    }


def bullmq_priority(priority: int) -> int:
    """Our priority (lower first, 0 by default) in BullMQ's range 1..2**21 (lower first).

    Every job gets one, the default ones included: BullMQ serves its plain wait list before
    any prioritized job, so leaving 0 unprioritized would run default jobs ahead of urgent
    (negative) ones. Equal priorities run oldest first, as in the table mode.
    """
    return priority + PRIORITY_OFFSET


def delay_ms(next_run_at: datetime | None) -> int:
    """Milliseconds until ``next_run_at``; 0 when unset or past."""
    if next_run_at is None:
        return 0
    return max(0, math.ceil((next_run_at - utcnow()).total_seconds() * 1000))


def iso_ms(moment: datetime) -> str:
    """UTC ISO 8601 with milliseconds and ``Z``, as the Node service wrote times."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def redis_address(url: str) -> tuple[str, int]:
    """Host and port of a Redis URL, for the startup line."""
    parts = urlsplit(url)
    return parts.hostname or "localhost", parts.port or 6379


def redis_client(url: str, timeout_s: float) -> Redis:
    """A client that fails fast when Redis is down instead of retrying for minutes."""
    return Redis.from_url(
        url,
        decode_responses=True,  # BullMQ's scripts expect str replies
        socket_connect_timeout=timeout_s,
        socket_timeout=max(timeout_s, 5.0),
        retry=fast_retry(),
        retry_on_error=[BusyLoadingError, ConnectionError, TimeoutError],
    )


def fast_retry() -> Retry:
    """Two quick retries: bullmq's default (20, up to 20 s apart) outlasts any request."""
    return Retry(ExponentialBackoff(cap=0.2, base=0.02), 2)
