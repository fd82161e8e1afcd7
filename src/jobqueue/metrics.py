"""Prometheus metrics: what happened to jobs (counted where it happens) and the queue's state
(read from the database when /metrics is scraped).

``jobqueue serve`` runs its worker in child processes: each process counts in files of a
directory that serve makes (prometheus-client's multiprocess mode) and serve's /metrics adds
them up. A process on its own (``jobqueue api``, ``jobqueue worker``) counts in memory.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Iterator, Sequence
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from jobqueue.domain.jobs import Job, QueueState

MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""Where each process of ``serve`` writes its counts (prometheus-client's own variable)."""

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)
"""Attempt durations in seconds: from a quick handler to the five-minute default timeout."""

Child = TypeVar("Child", Counter, Histogram)


class _PerType(Generic[Child]):
    """A labelled metric's child for each job type, looked up once per type: ``labels()``
    costs more than the increment it leads to."""

    def __init__(self, metric: Child) -> None:
        self._metric: Child = metric
        self._children: dict[str, Child] = {}

    def __call__(self, job_type: str) -> Child:
        child = self._children.get(job_type)
        if child is None:
            child = self._children[job_type] = self._metric.labels(job_type)
        return child


class JobMetrics:
    """The counters and the histogram of one process, by job type."""

    def __init__(self) -> None:
        """Metrics in a registry of their own (so that several services can live in one
        process, as in the tests); in multiprocess mode their values go to files too."""
        self.registry = CollectorRegistry(auto_describe=True)
        by_type = ["type"]
        self._created = _PerType(
            Counter("jobqueue_jobs_created", "Jobs created", by_type, registry=self.registry)
        )
        self._completed = _PerType(
            Counter("jobqueue_jobs_completed", "Jobs completed", by_type, registry=self.registry)
        )
        self._failed = _PerType(
            Counter("jobqueue_jobs_failed", "Jobs failed for good", by_type, registry=self.registry)
        )
        self._retried = _PerType(
            Counter(
                "jobqueue_jobs_retried",
                "Attempts that failed and were scheduled to run again",
                by_type,
                registry=self.registry,
            )
        )
        self._duration = _PerType(
            Histogram(
                "jobqueue_attempt_duration_seconds",
                "How long each attempt's handler ran",
                by_type,
                buckets=DURATION_BUCKETS,
                registry=self.registry,
            )
        )

    def created(self, jobs: Sequence[Job]) -> None:
        """New jobs were committed (a batch: one increment per type)."""
        if len(jobs) == 1:
            self._created(jobs[0].type).inc()
            return
        for job_type, count in collections.Counter(job.type for job in jobs).items():
            self._created(job_type).inc(count)

    def completed(self, job_type: str, duration_ms: float | None) -> None:
        """An attempt succeeded and was recorded."""
        self._completed(job_type).inc()
        self._observe(job_type, duration_ms)

    def retried(self, job_type: str, duration_ms: float | None) -> None:
        """An attempt failed and the job was scheduled to run again."""
        self._retried(job_type).inc()
        self._observe(job_type, duration_ms)

    def failed(self, job_type: str, duration_ms: float | None) -> None:
        """An attempt failed and the job failed for good."""
        self._failed(job_type).inc()
        self._observe(job_type, duration_ms)

    def _observe(self, job_type: str, duration_ms: float | None) -> None:
        # A lost attempt (its worker died) has no duration: nothing measured it.
        if duration_ms is not None:
            self._duration(job_type).observe(duration_ms / 1000)


class QueueStateCollector(Collector):
    """The gauges of the queue's state, as read from the database for this scrape."""

    def __init__(self, state: QueueState) -> None:
        """``state``: the counts and the oldest due job, read just before."""
        self.state = state

    def collect(self) -> Iterator[Metric]:
        """``jobqueue_jobs{status}`` and ``jobqueue_oldest_pending_age_seconds``."""
        jobs = GaugeMetricFamily("jobqueue_jobs", "Jobs in each status", labels=["status"])
        for status, count in self.state.counts.items():
            jobs.add_metric([status], count)
        yield jobs
        yield GaugeMetricFamily(
            "jobqueue_oldest_pending_age_seconds",
            "How long the longest-waiting due pending job has waited (0: none waits)",
            value=self.state.oldest_pending_age_s,
        )


def exposition(metrics: JobMetrics, state: QueueState) -> bytes:
    """The text a scrape gets: every process's counts (added up from the directory in
    multiprocess mode, else this process's), then the queue's state."""
    registry = CollectorRegistry(auto_describe=False)
    directory = os.environ.get(MULTIPROCESS_DIR_ENV)
    if directory:
        MultiProcessCollector(registry, directory)  # type: ignore[no-untyped-call]
    else:
        registry.register(metrics.registry)
    registry.register(QueueStateCollector(state))
    return generate_latest(registry)


def count_in_directory(directory: str) -> None:
    """From now on, metrics made in this process and in the processes it starts count in
    files in ``directory`` (call it before the first metric is made)."""
    os.environ[MULTIPROCESS_DIR_ENV] = directory
    # prometheus-client chooses how values are kept when it is imported; choose again.
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def process_ended(pid: int) -> None:
    """A worker process of serve is gone: drop the per-process parts of its counts (its
    counters and histograms stay in the sums)."""
    directory = os.environ.get(MULTIPROCESS_DIR_ENV)
    if directory:
        mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
