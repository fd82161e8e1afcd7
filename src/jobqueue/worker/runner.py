"""The worker process's loop: consume jobs, record outcomes, and run the broker's recovery."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from jobqueue.config import Settings
from jobqueue.domain.jobs import Job, job_fields
from jobqueue.domain.outcome import Outcome
from jobqueue.queue.base import Broker, Consumer
from jobqueue.service import JobService
from jobqueue.worker.executor import JobExecutor

log = structlog.get_logger(__name__)


class Worker:
    """Runs jobs from the broker through the executor, at most ``concurrency`` at once."""

    def __init__(
        self, service: JobService, broker: Broker, executor: JobExecutor, settings: Settings
    ) -> None:
        self.service = service
        self.settings = settings
        self.concurrency = settings.worker_concurrency
        self.broker = broker
        self.consumer: Consumer = broker.consumer(self, self.concurrency)
        self.queue_name = broker.name
        self.executor = executor
        self.started = asyncio.Event()
        """Set once the worker has announced itself and begun consuming."""

    async def run(self) -> None:
        """Work until ``stop``; returns once running jobs finished or were handed back."""
        log.info("Worker started", queue=self.queue_name, concurrency=self.concurrency)
        self.started.set()
        recovery = asyncio.create_task(self.broker.recovery(self.service), name="jobqueue-recovery")
        try:
            await self.consumer.run()
        finally:
            recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await recovery
        log.info("Worker stopped")

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
        """Record the attempt's outcome; None when it could not be recorded."""
        with structlog.contextvars.bound_contextvars(**job_fields(job)):
            try:
                return await self.service.record_outcome(job, outcome)
            except Exception:
                # The lease runs out and the job runs again: delivery is at least once.
                log.exception("could not record the outcome")
                return None
