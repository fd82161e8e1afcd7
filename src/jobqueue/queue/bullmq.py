"""BullMQ on Redis as the queue: the Node service's queue `job-queue` and DLQ `job-dlq`.

The row stays the source of truth; a BullMQ job is only the trigger that makes a worker run
it, with the BullMQ job id equal to the row id so that enqueueing is idempotent. All of
BullMQ's camelCase dictionaries live in ``bullmq_wire``.

Every Redis call made on a request path is bounded by REDIS_TIMEOUT_MS: with Redis down a
POST still answers (the row is committed; the reconciler enqueues it later) and /health
answers 503 naming redis.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping, Sequence
from typing import TypeVar
from uuid import UUID

import structlog
from bullmq import Queue

from jobqueue.config import Settings
from jobqueue.domain.jobs import DeadLetter, Job
from jobqueue.domain.limits import TypeLimit
from jobqueue.domain.retry import RetryPolicies
from jobqueue.queue.base import Broker, Consumer, JobRunner, Leases, Repairs
from jobqueue.queue.bullmq_consumer import BullMQConsumer
from jobqueue.queue.bullmq_outbox import Outbox, OutboxSource
from jobqueue.queue.bullmq_pipeline import add_jobs
from jobqueue.queue.bullmq_reconciler import Reconciler
from jobqueue.queue.bullmq_wire import (
    DLQ_NAME,
    FINISHED_STATES,
    LIVE_STATES,
    QUEUE_NAME,
    RedisTarget,
    dead_letter_data,
    dead_letter_id,
    job_entry,
    redis_address,
    redis_client,
)
from jobqueue.store.batching import GroupCommit

log = structlog.get_logger(__name__)

T = TypeVar("T")

_STATE_CHUNK = 50  # state look-ups sent at once by the reconciler: bounds open connections
_MAX_PUBLISH_BATCH = 500
_ADD_CHUNK = 1000  # adds per script call: a whole batch (one round trip), and no more


class BullMQBroker(Broker):
    """Publishes rows as BullMQ jobs on `job-queue` and dead letters on `job-dlq`."""

    name = QUEUE_NAME
    dependency = "redis"
    keeps_dead_letters = True

    def __init__(
        self,
        settings: Settings,
        leases: Leases,
        policies: RetryPolicies | None = None,
        limits: Mapping[str, TypeLimit] | None = None,
    ) -> None:
        """Connects lazily: nothing touches Redis until the first call. ``policies`` give
        each BullMQ job the backoff of its type (so BullMQ retries when our rule does)."""
        if settings.queue_url is None:
            raise ValueError("BullMQBroker needs REDIS_URL, or REDIS_HOST and REDIS_PORT")
        self.settings = settings
        self.leases = leases
        self.policies = policies or RetryPolicies(settings.retry_policy)
        self.limits = dict(limits or {})
        self.url = settings.queue_url
        self.timeout_s = settings.redis_timeout_ms / 1000
        self.target = RedisTarget(self.url, self.timeout_s)
        self.redis = redis_client(self.url, self.timeout_s)
        self.queue = Queue(QUEUE_NAME, {"connection": self.redis})
        self.dlq = Queue(DLQ_NAME, {"connection": self.redis})
        self._connected_logged = False
        # New jobs from concurrent requests share one addBulk round trip.
        self._fresh: GroupCommit[Job, UUID, bool] = GroupCommit(
            self._add_fresh, key=lambda job: job.id, max_batch=_MAX_PUBLISH_BATCH
        )

    async def publish(self, jobs: Sequence[Job]) -> None:
        """Add a BullMQ job per row (bounded); a finished leftover of the same id goes first.

        BullMQ silently ignores an add whose jobId is still stored, so a row that went back
        to pending (retry, PATCH) would never run again if its completed or failed BullMQ job
        were kept. A delayed one is replaced so that a changed nextRunAt takes effect.
        """
        if len(jobs) == 1 and _is_fresh(jobs[0]):
            await self._fresh.submit(jobs[0])  # bounded inside: the flush is shared
        elif jobs:
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

    async def publish_dead_letter(self, entry: DeadLetter) -> bool:
        """Add the entry to `job-dlq` as the Node service did; the database already holds it.

        Its BullMQ id is made of the job id and the failure time, so that writing it again
        (the first write's answer was lost) leaves one entry.
        """
        options = {"jobId": dead_letter_id(entry)}
        try:
            await self.bounded(self.dlq.add(entry.type, dead_letter_data(entry), options))
        except Exception as exc:
            log.error(
                "could not add the DLQ entry to Redis; it is written once Redis answers",
                job_id=str(entry.job_id),
                error=str(exc),
            )
            return False
        return True

    async def ping(self) -> None:
        """Redis PING, bounded by REDIS_TIMEOUT_MS."""
        await self.bounded(self.redis.ping())

    def consumer(self, runner: JobRunner, concurrency: int) -> Consumer:
        """A BullMQ worker on `job-queue` that runs rows through ``runner``."""
        return BullMQConsumer(
            self.leases,
            runner,
            concurrency,
            redis=self.target,
            settings=self.settings,
            on_connected=self.note_connected,
            limits=self.limits,
        )

    async def recovery(self, repairs: Repairs) -> None:
        """The reconciler: BullMQ re-runs a dead worker's job itself (its stalled-job check),
        so the table's lease recovery would fail jobs BullMQ still runs; the reconciler
        covers what BullMQ cannot see instead. Beside it, the outbox publishes the jobs
        that applications commit with ``jobqueue.enqueue``."""
        reconciler = Reconciler(repairs, self, self.settings).run()
        if not isinstance(self.leases, OutboxSource):
            await reconciler
            return
        await asyncio.gather(reconciler, Outbox(self.leases, self).run())

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
        result = await self.target.bounded(call)
        self.note_connected()
        return result

    def note_connected(self) -> None:
        """Log the Node service's startup line ``Redis connected {host, port}`` once."""
        if not self._connected_logged:
            self._connected_logged = True
            host, port = redis_address(self.url)
            log.info("Redis connected", host=host, port=port)

    async def _enqueue(self, jobs: Sequence[Job]) -> None:
        fresh = [job for job in jobs if _is_fresh(job)]
        changed = [job for job in jobs if not _is_fresh(job)]
        addable = fresh + await self._make_room(changed)
        if addable:
            await self._add(addable)

    async def _add_fresh(self, jobs: Sequence[Job]) -> dict[UUID, bool]:
        await self.bounded(self._add(jobs))
        return {job.id: True for job in jobs}

    async def _add(self, jobs: Sequence[Job]) -> None:
        rule = self.policies.for_type
        for start in range(0, len(jobs), _ADD_CHUNK):
            chunk = jobs[start : start + _ADD_CHUNK]
            # Entries made one at a time as the arguments are: a batch's dictionaries never
            # exist all at once (3 MiB at the peak of four concurrent batches).
            entries = (job_entry(job, rule(job.type)) for job in chunk)
            await add_jobs(self.queue.scripts, entries)

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


def _is_fresh(job: Job) -> bool:
    """Never changed since its insert: its id is new, so no BullMQ job can exist for it yet
    (a create needs no look-up before its add)."""
    return job.updated_at == job.created_at
