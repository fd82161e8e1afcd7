"""Redis mode: jobs that applications commit with ``jobqueue.enqueue`` reach BullMQ at once.

``jobqueue.enqueue`` cannot add the BullMQ job itself (Redis is not in the application's
transaction, and a job added before the commit could run before its row exists, or after a
rollback). It notifies the channel ``jobqueue_outbox`` with the new jobs' ids instead, in
the same transaction, so PostgreSQL delivers the notification when, and only if, the rows
commit. Each Redis-mode worker listens there and adds those of the jobs still pending to
BullMQ (their BullMQ id is the row id: several workers adding one job leave one). A
notification lost while no worker listened (all stopped, a dropped connection) is covered by
the reconciler, which re-adds pending rows without a queue entry every RECONCILE_INTERVAL_MS.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol, runtime_checkable
from uuid import UUID

import structlog

from jobqueue.domain.jobs import Job
from jobqueue.log_throttle import LogThrottle
from jobqueue.queue.bullmq_reconciler import TriggeredBroker

log = structlog.get_logger(__name__)


@runtime_checkable
class OutboxSource(Protocol):
    """The store's side: the outbox notifications, and the rows they name (PostgreSQL)."""

    def listen_outbox(self, on_payload: Callable[[str], None]) -> AbstractAsyncContextManager[None]:
        """Call ``on_payload`` with each notification's comma-separated ids."""
        ...

    async def pending_among(self, job_ids: Sequence[UUID]) -> list[Job]:
        """Those of the jobs that are pending."""
        ...


class Outbox:
    """Publishes the jobs named by outbox notifications, as they arrive."""

    def __init__(self, source: OutboxSource, broker: TriggeredBroker) -> None:
        self.source = source
        self.broker = broker
        self._waiting: list[UUID] = []
        self._arrived = asyncio.Event()
        self._failures = LogThrottle()

    async def run(self) -> None:
        """Listen and publish until cancelled."""
        async with self.source.listen_outbox(self.receive):
            while True:
                await self._arrived.wait()
                self._arrived.clear()
                job_ids, self._waiting = self._waiting, []
                await self.publish(job_ids)

    def receive(self, payload: str) -> None:
        """Note the ids of one notification (called by the listening connection)."""
        job_ids = ids_of(payload)
        if job_ids:
            self._waiting.extend(job_ids)
            self._arrived.set()

    async def publish(self, job_ids: Sequence[UUID]) -> int:
        """Add the jobs that are still pending to BullMQ; how many. A failure is logged and
        left to the reconciler."""
        try:
            jobs = await self.source.pending_among(job_ids)
            await self.broker.publish(jobs)
        except Exception as exc:
            failed = "could not publish enqueued jobs; the reconciler adds them later"
            self._failures.log(type(exc).__name__, log.warning, failed, error=str(exc))
            return 0
        log.debug("enqueued jobs published", count=len(jobs))
        return len(jobs)


def ids_of(payload: str) -> list[UUID]:
    """The ids of an outbox notification; a malformed one is logged and skipped."""
    job_ids: list[UUID] = []
    for text in filter(None, payload.split(",")):
        try:
            job_ids.append(UUID(text))
        except ValueError:
            log.warning("outbox notification holds no job id; ignored", text=text[:100])
    return job_ids
