"""The worker process's loop: consume jobs, record outcomes, and run the broker's recovery."""

from __future__ import annotations

import asyncio

import structlog

from jobqueue.config import Settings
from jobqueue.domain.jobs import Job, job_fields
from jobqueue.domain.outcome import Outcome
from jobqueue.log_throttle import LogThrottle
from jobqueue.queue.base import Broker, Consumer
from jobqueue.service import JobService
from jobqueue.store.base import StoreUnavailableError
from jobqueue.worker.cancels import CHECK_INTERVAL_S, CancelWatch
from jobqueue.worker.executor import JobExecutor
from jobqueue.worker.periodic import every
from jobqueue.worker.progress import ProgressWriter
from jobqueue.worker.retention import PRUNE_INTERVAL_S, Retention
from jobqueue.worker.scheduler import Scheduler

log = structlog.get_logger(__name__)

_RECORD_RETRY_FIRST_S = 0.1
_RECORD_RETRY_MAX_S = 5.0


class Worker:
    """Runs jobs from the broker through the executor, at most ``concurrency`` at once."""

    def __init__(
        self,
        service: JobService,
        broker: Broker,
        executor: JobExecutor,
        settings: Settings,
        progress: ProgressWriter | None = None,
    ) -> None:
        """``progress``, when given, is the writer behind ``executor``'s progress reports:
        the worker writes what is left of it when it stops."""
        self.service = service
        self.settings = settings
        self.concurrency = settings.worker_concurrency
        self.broker = broker
        self.consumer: Consumer = broker.consumer(self, self.concurrency)
        self.queue_name = broker.name
        self.executor = executor
        self.progress = progress
        self.started = asyncio.Event()
        """Set once the worker has announced itself and begun consuming."""
        self._unrecorded = LogThrottle()

    async def run(self) -> None:
        """Work until ``stop``; returns once running jobs finished or were handed back."""
        log.info("Worker started", queue=self.queue_name, concurrency=self.concurrency)
        self.started.set()
        chores = self._start_chores()
        try:
            await self.consumer.run()
        finally:
            for chore in chores:
                chore.cancel()
            await asyncio.gather(*chores, return_exceptions=True)
            if self.progress is not None:
                await self.progress.close()
        log.info("Worker stopped")

    def _start_chores(self) -> list[asyncio.Task[None]]:
        """Beside the jobs: the broker's recovery, the watch for cancels of running jobs, the
        recurring jobs and, unless RETAIN_COMPLETED is 0, retention."""
        cancels = CancelWatch(self.service, self.executor, self.settings.job_cancel_grace_ms / 1000)
        chores = {
            "recovery": self.broker.recovery(self.service),
            "cancels": every(CHECK_INTERVAL_S, cancels.check_once),
            "schedules": Scheduler(self.service, self.service.schedules).run(),
        }
        if self.settings.retain_completed:
            retention = Retention(self.service, self.settings.retain_completed)
            chores["retention"] = every(PRUNE_INTERVAL_S, retention.prune_once)
        return [asyncio.create_task(chore, name=f"jobqueue-{n}") for n, chore in chores.items()]

    def stop(self) -> None:
        """Stop claiming; running jobs get SHUTDOWN_GRACE_MS to finish."""
        log.info("Worker stopping", grace_ms=self.settings.shutdown_grace_ms)
        self.consumer.stop(self.settings.shutdown_grace_ms / 1000)

    async def record_lost_attempt(self, job: Job) -> Job | None:
        """A job re-delivered because its worker died: its attempt failed (retry rule decides)."""
        return await self.service.record_lost_attempt(job)

    async def execute(self, job: Job) -> Outcome:
        """Run the job's handler once; every exception becomes a failed outcome."""
        with structlog.contextvars.bound_contextvars(**job_fields(job)):
            return await self.executor.execute(job)

    async def record(self, job: Job, outcome: Outcome) -> Job | None:
        """Record the attempt's outcome; None when it could not be (lease lost, row deleted).

        While the database is down the outcome is kept and tried again, up to
        5 s apart, until it is written or refused: a job that finished during an outage does
        not run again after it. The lease check in the store refuses an outcome whose job ran
        elsewhere meanwhile. A stop gives these tries the grace period, then the job runs
        again after its lease (delivery is at least once).
        """
        delay = _RECORD_RETRY_FIRST_S
        with structlog.contextvars.bound_contextvars(**job_fields(job)):
            while True:
                try:
                    return await self.service.record_outcome(job, outcome)
                except StoreUnavailableError as exc:
                    self._note_unrecorded(exc, delay)
                except Exception:
                    log.exception("could not record the outcome")
                    return None
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RECORD_RETRY_MAX_S)

    def _note_unrecorded(self, exc: StoreUnavailableError, retry_in_s: float) -> None:
        self._unrecorded.log(
            type(exc).__name__,
            log.error,
            "could not record the outcome; the database is unavailable, will try again",
            error=str(exc),
            retry_in_s=retry_in_s,
        )
