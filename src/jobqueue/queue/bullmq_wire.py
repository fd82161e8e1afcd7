"""BullMQ on the wire: queue names, option dictionaries, data shapes, Redis connections.

The one module that knows BullMQ's camelCase dictionaries and the Node service's data keys;
the broker and the consumer both build on it and not on each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit
from uuid import UUID

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.connection import HiredisRespSerializer
from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError

from jobqueue.domain.jobs import DeadLetter, Job, JSONObject, iso_ms, utcnow
from jobqueue.domain.retry import RetryPolicy

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


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """Where Redis is and how long one call on a request path may take."""

    url: str
    timeout_s: float

    async def bounded(self, call: Awaitable[T]) -> T:
        """Await one Redis call for at most ``timeout_s``."""
        return await asyncio.wait_for(call, self.timeout_s)


def job_entry(job: Job, policy: RetryPolicy) -> tuple[str, JSONObject, dict[str, Any]]:
    """The BullMQ job for ``job``: its name, data and options."""
    return job.type, job_data(job), job_options(job, policy)


def job_options(job: Job, policy: RetryPolicy) -> dict[str, Any]:
    """BullMQ options: attempts and backoff from the same rule as ours (its type's)."""
    return {
        "jobId": str(job.id),
        "attempts": job.max_attempts,
        "backoff": {"type": policy.backoff.value, "delay": policy.backoff_ms},
        "delay": delay_ms(job.next_run_at),
        "priority": bullmq_priority(job.priority),
        "removeOnComplete": KEEP_COMPLETED,
        "removeOnFail": KEEP_FAILED,
    }


def worker_options(url: str, concurrency: int, lease_ms: int) -> dict[str, Any]:
    """A bullmq ``Worker``'s options: a dead worker's job runs again after ``lease_ms``."""
    return {
        "connection": url,
        "concurrency": concurrency,
        "autorun": False,
        "lockDuration": lease_ms,
        "stalledInterval": lease_ms,
        "maxStalledCount": 1,
        "runRetryDelay": 1000,  # after a Redis error; bullmq's 15 s would idle past a restart
    }


def job_data(job: Job) -> JSONObject:
    """A BullMQ job's data: what the Node service put on the queue, ``{jobId, type, payload}``.

    Node workers and Bull Board written for that service read these keys; our own worker
    reads only the job id and takes everything else from the row.
    """
    return {"jobId": str(job.id), "type": job.type, "payload": job.payload}


def row_id_of(job: Any) -> UUID | None:
    """The row id of a BullMQ job: its id, or the ``jobId`` in the data of a Node-made job."""
    for candidate in (job.id, (job.data or {}).get("jobId")):
        try:
            return UUID(str(candidate))
        except ValueError:
            continue
    return None


def job_type_of(job: Any) -> str:
    """The job type of a BullMQ job: ``type`` in its data (a Node-made job), else its name."""
    return str((job.data or {}).get("type") or job.name)


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


def dead_letter_id(entry: DeadLetter) -> str:
    """A `job-dlq` entry's BullMQ id: the job's id and when it failed (a job may fail, be
    retried and fail again). BullMQ ids may not contain ':'."""
    return f"{entry.job_id}-{round(entry.failed_at.timestamp() * 1000)}"


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


def redis_address(url: str) -> tuple[str, int]:
    """Host and port of a Redis URL, for the startup line."""
    parts = urlsplit(url)
    return parts.hostname or "localhost", parts.port or 6379


class HiredisPackedConnection(Connection):
    """redis-py's asyncio connection, its commands packed by hiredis in C as its synchronous
    client does: packing in Python was a fifth of the API's time on a batch create (1,000
    BullMQ adds of 13 arguments each)."""

    _serializer = HiredisRespSerializer()

    def pack_command(self, *args: Any) -> list[bytes]:
        """One command in Redis's protocol."""
        return [self._packed(args)]

    def pack_commands(self, commands: Any) -> list[bytes]:
        """A pipeline's commands in Redis's protocol, as one buffer."""
        commands = list(commands)
        if len(commands) == 1:  # a batch's one script call: no copy of its 400 KiB
            return [self._packed(commands[0])]
        return [b"".join(self._packed(command) for command in commands)]

    def _packed(self, args: Any) -> bytes:
        # The usual command (a one-word name, then str, bytes and numbers) goes to hiredis as
        # it is; redis-py's serializer first splits names like "CONFIG GET" and copies views.
        name = args[0]
        if isinstance(name, str) and " " not in name:
            with contextlib.suppress(TypeError):
                packed: bytes = hiredis.pack_command(tuple(args))
                return packed
        return bytes(self._serializer.pack(*args)[0])


def redis_client(url: str, timeout_s: float) -> Redis:
    """A client that fails fast when Redis is down instead of retrying for minutes."""
    client = Redis.from_url(
        url,
        decode_responses=True,  # BullMQ's scripts expect str replies
        socket_connect_timeout=timeout_s,
        socket_timeout=max(timeout_s, 5.0),
        retry=fast_retry(),
        retry_on_error=[BusyLoadingError, ConnectionError, TimeoutError],
    )
    pack_with_hiredis(client)
    return client


def pack_with_hiredis(client: Redis) -> None:
    """Make ``client`` (ours, or one bullmq built) pack its commands with hiredis (see
    ``HiredisPackedConnection``); before its first command. Plain TCP only: rediss:// and
    unix:// keep the connection classes redis-py picked."""
    pool = client.connection_pool
    if pool.connection_class is Connection:
        pool.connection_class = HiredisPackedConnection


def fast_retry() -> Retry:
    """Two quick retries: bullmq's default (20, up to 20 s apart) outlasts any request."""
    return Retry(ExponentialBackoff(cap=0.2, base=0.02), 2)
