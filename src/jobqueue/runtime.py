"""Composition root: build the store, queue, service and worker that the settings describe."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import timedelta

from jobqueue.config import Settings
from jobqueue.domain.retry import RetryPolicies
from jobqueue.domain.schedules import merged, parse_schedules
from jobqueue.handlers.registry import HandlerRegistry, load_handler_modules
from jobqueue.queue.base import Broker
from jobqueue.queue.table import ClaimSettings, TableBroker
from jobqueue.service import JobService
from jobqueue.store.base import JobStore
from jobqueue.store.factory import open_store
from jobqueue.worker.executor import JobExecutor
from jobqueue.worker.progress import ProgressWriter
from jobqueue.worker.runner import Worker


def worker_id() -> str:
    """Who holds a lease: host, process and a random part (pids repeat across restarts)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def make_broker(
    settings: Settings, store: JobStore, registry: HandlerRegistry, policies: RetryPolicies
) -> Broker:
    """BullMQ on Redis when Redis is configured; otherwise the jobs table is the queue."""
    if settings.queue_url is not None:
        from jobqueue.queue.bullmq import BullMQBroker

        return BullMQBroker(settings, store, policies, registry.limits())
    claims = ClaimSettings(
        owner=worker_id(),
        lease=timedelta(milliseconds=settings.job_lease_ms),
        poll_interval_s=settings.job_poll_interval_ms / 1000,
        prefetch=settings.worker_prefetch,
        job_types=registry.types(),
        limits=registry.limits(),
    )
    return TableBroker(store, claims)


@dataclass
class Runtime:
    """Everything one process needs, built once and closed once."""

    settings: Settings
    registry: HandlerRegistry
    store: JobStore
    broker: Broker
    service: JobService

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        """Wire the parts; opens no connection until first use."""
        registry = load_handler_modules(settings.jobqueue_handlers)
        store = open_store(
            settings.database_url,
            timeout_s=settings.db_timeout_ms / 1000,
            pool_size=settings.db_pool_size,
        )
        policies = registry.retry_policies(settings.retry_policy)
        broker = make_broker(settings, store, registry, policies)
        known = None if settings.accept_unknown_types else registry.types()
        schedules = merged(registry.schedules(), parse_schedules(settings.schedules))
        service = JobService(store, broker, policies, known, schedules)
        return cls(settings, registry, store, broker, service)

    def worker(self) -> Worker:
        """A worker over this runtime's queue and handlers (call it on the event loop)."""
        progress = ProgressWriter(self.service)
        executor = JobExecutor(
            self.registry, self.settings, progress.reporter(), self.service.parent_results
        )
        return Worker(self.service, self.broker, executor, self.settings, progress)

    async def close(self) -> None:
        """Close the queue, then the database."""
        await self.broker.close()
        await self.store.close()
