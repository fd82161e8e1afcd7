"""The BullMQ worker side: runs each delivered job's row and tells BullMQ how it went.

Outcome mapping (the retry rule stays in ``domain/retry.py``; BullMQ's attempts and backoff
are configured from the same settings, so both agree on when and how often):

- the row was recorded completed, or could not be recorded (lease lost, row deleted):
  the processor returns, BullMQ marks its job completed;
- pending (our RetryPolicy scheduled another attempt): it raises ``RetryScheduledError``,
  and BullMQ retries the same job after ``JOB_BACKOFF_MS * 2**(attemptsMade-1)``, the wait our
  policy wrote into the row's nextRunAt;
- failed (attempts exhausted or a permanent error): it raises ``UnrecoverableError`` so that
  BullMQ makes no further attempt.

The row's attempt count rules: a delivered job runs attempt ``row.attempts + 1``. BullMQ's
``attemptsMade + 1`` is the same number unless the BullMQ job was re-created (retry, PATCH,
reconciler), which restarts its counter; BullMQ then allows at least as many attempts as we do,
and a delivery that comes before the row's nextRunAt is put back until then. A job delivered
while its row is still processing was re-run by BullMQ's stalled-job check after its worker
died: that attempt is recorded as failed with LEASE_EXPIRED first, as the table mode does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import structlog
from bullmq import DelayedError, UnrecoverableError, Worker

from jobqueue.config import Settings
from jobqueue.domain.jobs import Job, JobStatus, job_fields, utcnow
from jobqueue.domain.limits import Deferrals, TypeLimit
from jobqueue.queue.base import Consumer, JobRunner, Leases
from jobqueue.queue.bullmq_pipeline import PipelinedMoves
from jobqueue.queue.bullmq_wire import (
    QUEUE_NAME,
    RedisTarget,
    delay_ms,
    fast_retry,
    job_type_of,
    pack_with_hiredis,
    redis_address,
    row_id_of,
    worker_options,
)
from jobqueue.queue.prefetch import PrefetchWindow
from jobqueue.store.base import TypeLimitReachedError

log = structlog.get_logger(__name__)

_RUNNABLE = frozenset({JobStatus.PENDING, JobStatus.PROCESSING})
_EARLY_TOLERANCE = timedelta(milliseconds=10)
_DB_ERROR_DELAY = timedelta(seconds=1)  # a delivery that met a database error tries again then
_LIMIT_RETRY = timedelta(milliseconds=500)  # the soonest a job over its type's limit looks again
_HAND_BACK_DELAY = timedelta(seconds=1)
"""A job handed back at a stop is due again this much later. Due at once, a fetch of this very
worker still in flight when it paused (bullmq's moveToActive promotes due delayed jobs) could
take it again; a fetched job is never run once paused, so it would sit active until its lock
ran out (seen once in a loaded CI run)."""
_CONNECT_RETRY_S = 1.0
_CLOSE_TIMEOUT_S = 5.0


class RetryScheduledError(Exception):
    """Raised to BullMQ when our retry policy scheduled another attempt."""


class BullMQConsumer(Consumer):
    """A bullmq ``Worker`` on `job-queue` whose processor runs rows through ``runner``."""

    def __init__(
        self,
        leases: Leases,
        runner: JobRunner,
        concurrency: int,
        *,
        redis: RedisTarget,
        settings: Settings,
        on_connected: Callable[[], None],
        limits: Mapping[str, TypeLimit] | None = None,
    ) -> None:
        """``on_connected`` is called once Redis answers (the startup line); a delivery of a
        type in ``limits`` starts only within its limit, else it goes back for a moment."""
        self.leases = leases
        self.limits = dict(limits or {})
        self.deferrals = Deferrals(self.limits, _LIMIT_RETRY)
        self.redis = redis
        self.settings = settings
        self.on_connected = on_connected
        self.runner = runner
        self.concurrency = concurrency
        self.slots = asyncio.Semaphore(concurrency)
        """Handlers running at once (WORKER_CONCURRENCY); BullMQ delivers a few more."""
        self.lease = timedelta(milliseconds=self.settings.job_lease_ms)
        self.worker: Any = None
        self.running: dict[UUID, asyncio.Task[Job | None]] = {}
        self.deliveries: set[asyncio.Task[Any]] = set()
        self._stopping = asyncio.Event()
        self._grace_s = 0.0

    def stop(self, grace_s: float) -> None:
        """Stop taking jobs; running ones get ``grace_s`` seconds, then are handed back."""
        self._grace_s = grace_s
        self._stopping.set()

    async def run(self) -> None:
        """Deliver jobs until ``stop``; returns once running jobs ended or were handed back."""
        # BullMQ fetches jobs beyond the handler slots, so that starts and outcomes of many
        # jobs share round trips; the slots bound the handlers. bullmq's worker reads its
        # concurrency option on every turn of its loop: the window sets it.
        window = PrefetchWindow(self.settings.worker_prefetch, self.settings.worker_prefetch_max)
        fetched = self.concurrency + window.size
        options = worker_options(self.redis.url, fetched, self.settings.job_lease_ms)
        self.worker = Worker(QUEUE_NAME, self.process, options)

        def adapt(asked: int, found: int) -> None:
            self.worker.opts["concurrency"] = self.concurrency + window.observe(asked, found)

        self.worker.backend = PipelinedMoves(self.worker.backend, on_activations=adapt)
        for connection in (self.worker.redisConnection, self.worker.blockingRedisConnection):
            connection.conn.set_retry(fast_retry())  # bullmq's own retries block for minutes
            pack_with_hiredis(connection.conn)
        self._listen(self.worker)
        if not await self._connect():
            await self._close(self.worker)
            return
        loop = asyncio.create_task(self.worker.run(), name="bullmq-worker")
        stopping = asyncio.create_task(self._stopping.wait())
        await asyncio.wait({loop, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        await self._shut_down(self.worker, loop)

    async def process(self, job: Any, token: str | None) -> None:
        """The BullMQ processor: run the row, then map its recorded outcome (module doc)."""
        delivery = asyncio.current_task()
        assert delivery is not None  # always called from bullmq's processJob task
        self.deliveries.add(delivery)
        try:
            await self._deliver(job, token)
        finally:
            self.deliveries.discard(delivery)

    async def _deliver(self, job: Any, token: str | None) -> None:
        row_id = row_id_of(job)
        if row_id is None:
            log.warning("trigger with no job id dropped", bullmq_id=str(job.id))
            return
        row = await self._begin(job, token, row_id)
        if row is None:
            log.warning("trigger for a missing or finished job dropped", job_id=str(row_id))
            return
        _settle(await self._run(job, token, row))

    async def _begin(self, job: Any, token: str | None, row_id: UUID) -> Job | None:
        """Start the row's next attempt; None when there is nothing to run (trigger dropped).

        Raises ``DelayedError`` when the delivery was put back (stopping, not due yet, the
        database did not answer), and what ``_settle`` raises for a lost attempt.
        """
        if self._stopping.is_set():
            await self._put_back(job, token, utcnow() + _HAND_BACK_DELAY)
        try:
            owner = token or str(self.worker.id)
            lease_until = utcnow() + self.lease
            due_by = utcnow() + _EARLY_TOLERANCE
            started = await self._start(job, row_id, owner, lease_until, due_by)
            if started is not None:
                return started  # the usual case: one round trip
            current = await self.leases.get(row_id)
        except TypeLimitReachedError:
            await self._put_back(job, token, self.deferrals.due(job_type_of(job), utcnow()))
        except Exception as exc:
            log.error("could not start the job; it runs later", job_id=str(row_id), error=str(exc))
            await self._put_back(job, token, utcnow() + _DB_ERROR_DELAY)
        if current is None or current.status not in _RUNNABLE:
            return None
        if current.status is JobStatus.PENDING:
            await self._put_back(job, token, current.next_run_at)  # not due yet
        _settle(await self._record_lost_attempt(current))
        return None

    async def _start(
        self, job: Any, row_id: UUID, owner: str, lease_until: datetime, due_by: datetime
    ) -> Job | None:
        """Start the row's attempt; within its type's limit when it has one (the type is the
        BullMQ job's name, or ``type`` in the data of a Node-made job)."""
        limit = self.limits.get(job_type_of(job))
        if limit is None:
            return await self.leases.start(row_id, owner, lease_until, due_by)
        return await self.leases.start_limited(row_id, owner, lease_until, due_by, limit)

    async def _record_lost_attempt(self, current: Job) -> Job | None:
        """A re-delivered processing row: its worker died (BullMQ's stalled check gave it
        back). As in the table mode, that attempt failed with LEASE_EXPIRED; the policy then
        schedules another one or fails the job into the DLQ."""
        return await self.runner.record_lost_attempt(current)

    async def _run(self, job: Any, token: str | None, row: Job) -> Job | None:
        """Run the row in its own task so that a stop can cancel it and hand the job back."""
        task = asyncio.create_task(self._handle_in_slot(row), name=f"job-{row.id}")
        self.running[row.id] = task
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:
            task.cancel()  # the worker itself is being torn down
            raise
        finally:
            self.running.pop(row.id, None)
        if task.cancelled():
            await self._hand_back(job, token, row)
        return task.result()

    async def _handle_in_slot(self, row: Job) -> Job | None:
        async with self.slots:
            outcome = await self.runner.execute(row)
        return await self.runner.record(row, outcome)

    async def _hand_back(self, job: Any, token: str | None, row: Job) -> None:
        """Give the attempt back in the row and in BullMQ, then end this delivery."""
        released = await self.leases.release(row)
        log.warning(
            "job handed back unfinished" if released else "job could not be handed back",
            **job_fields(row),
        )
        await self._put_back(job, token, utcnow() + _HAND_BACK_DELAY)

    async def _put_back(self, job: Any, token: str | None, when: datetime | None) -> None:
        """Move the active BullMQ job to delayed until ``when`` without spending an attempt.

        Always raises ``DelayedError``, which tells the bullmq worker the job was moved.
        """
        now_ms = int(utcnow().timestamp() * 1000)
        opts = {"skipAttempt": True}
        try:
            move = job.backend.moveToDelayed(job.id, now_ms, delay_ms(when), token or "0", opts)
            await self.redis.bounded(move)
        except Exception as exc:
            # Its lock then runs out and BullMQ's stalled-job check runs it again.
            log.warning(
                "could not put the job back on the queue", bullmq_id=str(job.id), error=str(exc)
            )
        raise DelayedError()

    async def _connect(self) -> bool:
        """Wait until Redis answers (or stop); False when stopped first."""
        while not self._stopping.is_set():
            try:
                # Pitfall 1: until the blocking connection knows the Redis version, the worker
                # rounds its waits up to whole seconds, so a 2 s backoff would wait 3 s.
                await self.redis.bounded(self.worker.blockingRedisConnection.getRedisVersion())
                await self.redis.bounded(self.worker.redisConnection.getRedisVersion())
                self.on_connected()
                return True
            except Exception as exc:
                log.error("Redis not reachable; will try again", error=str(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), _CONNECT_RETRY_S)
        return False

    async def _shut_down(self, worker: Any, loop: asyncio.Task[Any]) -> None:
        """Stop fetching, give running jobs the grace period, hand back the rest, close."""
        await worker.pause(do_not_wait_active=True)  # keeps renewing locks, unlike close()
        if self.deliveries:
            log.info("waiting for running jobs", running=len(self.running), grace_s=self._grace_s)
            await asyncio.wait(set(self.deliveries), timeout=self._grace_s)
        for task in list(self.running.values()):
            task.cancel()
        if self.deliveries:
            await asyncio.wait(set(self.deliveries), timeout=_CLOSE_TIMEOUT_S)
        await self._close(worker)
        try:
            await asyncio.wait_for(loop, _CLOSE_TIMEOUT_S)
        except (TimeoutError, asyncio.CancelledError):
            pass
        except Exception as exc:
            # A stop right after the start closes the connections under bullmq's first
            # commands (redis-py then fails to return a connection to its closed pool).
            log.warning("the BullMQ worker's loop failed while closing", error=repr(exc))

    async def _close(self, worker: Any) -> None:
        if worker.closed:
            return
        closing = asyncio.create_task(worker.close())
        done, _ = await asyncio.wait({closing}, timeout=_CLOSE_TIMEOUT_S)
        if not done:
            worker.cancelProcessing()  # stuck on a dead Redis: give up on pending fetches
            done, _ = await asyncio.wait({closing}, timeout=_CLOSE_TIMEOUT_S)
        if not done:
            log.error("the BullMQ worker did not close in time")
        elif closing.exception() is not None:
            log.warning("closing the BullMQ worker failed", error=str(closing.exception()))

    def _listen(self, worker: Any) -> None:
        # Pitfall 2: plain functions only: bullmq calls handlers without awaiting them.
        worker.on("error", _on_error)
        worker.on("stalled", _on_stalled)
        worker.on("failed", _on_failed)
        host, port = redis_address(self.redis.url)
        log.debug("BullMQ worker created", queue=QUEUE_NAME, host=host, port=port)


def _settle(recorded: Job | None) -> None:
    """Tell BullMQ what our retry policy decided (the mapping in the module doc)."""
    if recorded is None or recorded.status is JobStatus.COMPLETED:
        return
    if recorded.status is JobStatus.PENDING:
        raise RetryScheduledError(recorded.last_error or "retry scheduled")
    if recorded.status is JobStatus.FAILED:
        raise UnrecoverableError(recorded.last_error or "failed")


def _not_due(next_run_at: datetime | None) -> bool:
    return next_run_at is not None and next_run_at > utcnow() + _EARLY_TOLERANCE


def _on_error(error: Exception, *args: Any) -> None:
    log.error("BullMQ worker error", error=str(error))


def _on_stalled(job_id: str, *args: Any) -> None:
    log.warning("job stalled (its worker stopped); BullMQ runs it again", job_id=job_id)


def _on_failed(job: Any, error: Exception, *args: Any) -> None:
    log.debug(
        "BullMQ attempt ended",
        bullmq_id=str(job.id),
        error=str(error),
        attempts_made=job.attemptsMade,
    )
