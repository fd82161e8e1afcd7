"""Run the API, the worker, or both, and shut them down gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

import structlog
import uvloop

from jobqueue.config import Settings
from jobqueue.logs import configure_logging
from jobqueue.runtime import Runtime
from jobqueue.worker.runner import Worker

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ProcessPlan:
    """What one jobqueue process runs."""

    api: bool
    """Serve the HTTP API."""
    worker: bool
    """Run jobs: in this process, or in ``worker_processes`` children."""
    migrate: bool
    """Apply pending migrations first."""
    worker_processes: int = 0
    """With ``api`` and ``worker``: run the worker in this many child processes."""
    wake_fd: int | None = None
    """In a child of ``serve``: the pipe that wakes it, and whose end means serve is gone."""


def run(settings: Settings, plan: ProcessPlan) -> int:
    """Log as the settings say and run ``plan`` on uvloop until stopped; the exit status
    (2 with a one-line reason on stderr when it could not start)."""
    from jobqueue.domain.schedules import InvalidScheduleError
    from jobqueue.handlers.registry import HandlerLoadError
    from jobqueue.store.migrate import MigrationError
    from jobqueue.supervisor import WorkerStartError

    configure_logging(settings.log_level, settings.log_format)
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(run_process(settings, plan))
    except (HandlerLoadError, InvalidScheduleError, MigrationError, WorkerStartError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


async def run_process(settings: Settings, plan: ProcessPlan) -> None:
    """Start what ``plan`` asks for; on SIGTERM or SIGINT stop it all and return."""
    stopping = asyncio.Event()
    stoppers: list[Callable[[], None]] = [stopping.set]
    # Handle signals from the first moment, so that a stop during start-up also exits 0.
    _on_signals(lambda: [stop() for stop in stoppers])
    if plan.migrate:
        from jobqueue.store.migrate import migrate_in_subprocess

        log.info("applying migrations", database=_redacted(settings.database_url))
        await migrate_in_subprocess(settings.database_url)
    if stopping.is_set():
        log.info("stopped during start-up")
        return
    with _metrics_shared_with_workers(plan):
        runtime = Runtime.build(settings)
        try:
            await _run_parts(runtime, plan, stoppers, stopping)
        finally:
            await runtime.close()
            log.info("shutdown complete")


@contextlib.contextmanager
def _metrics_shared_with_workers(plan: ProcessPlan) -> Iterator[None]:
    """``serve`` with worker processes: every process counts in files of a private directory
    (made before the first metric, handed down to the children by the environment), which
    /metrics adds up; removed at exit."""
    if not (plan.api and plan.worker and plan.worker_processes > 0):
        yield
        return
    from jobqueue.metrics import count_in_directory

    directory = tempfile.mkdtemp(prefix="jobqueue-metrics-")
    count_in_directory(directory)
    try:
        yield
    finally:
        shutil.rmtree(directory, ignore_errors=True)


async def _run_parts(
    runtime: Runtime,
    plan: ProcessPlan,
    stoppers: list[Callable[[], None]],
    stopping: asyncio.Event,
) -> None:
    parts: list[Coroutine[Any, Any, None]] = []
    if plan.worker and plan.worker_processes > 0:
        parts.append(await _worker_processes(runtime, plan.worker_processes, stoppers))
    elif plan.worker:
        job_worker = runtime.worker()
        parts.append(job_worker.run())
        stoppers.append(job_worker.stop)
        if plan.wake_fd is not None:
            parts.append(_follow_parent(job_worker, plan.wake_fd, runtime))
        elif not plan.api and runtime.settings.metrics_port is not None:
            _serve_worker_metrics(runtime)
    if plan.api and not stopping.is_set():
        from jobqueue.api.serving import api_server

        server = api_server(runtime.service, runtime.settings)
        parts.append(server.serve())
        stoppers.append(server.stop)
    # Everything imported and built so far lives as long as the process: keep it out of the
    # collector's generations, so that its full passes do not stall requests (create p99 in
    # the Redis mode: 85 ms before, about 40 after).
    gc.freeze()
    await asyncio.gather(*parts)


async def _worker_processes(
    runtime: Runtime, count: int, stoppers: list[Callable[[], None]]
) -> Coroutine[Any, Any, None]:
    """Start the worker processes (their workers have started on return); the coroutine
    returned keeps them running until the process stops."""
    from jobqueue.supervisor import WorkerProcesses

    settings = runtime.settings
    children = WorkerProcesses(count, settings.worker_concurrency)
    stopped = asyncio.Event()
    stoppers.append(stopped.set)  # before the first await: a stop meanwhile is not lost
    await children.start()
    runtime.broker.also_wake(children.wake)
    return children.run(stopped, settings.shutdown_grace_ms / 1000)


def _serve_worker_metrics(runtime: Runtime) -> None:
    """A worker on its own exposes its counts on HOST:METRICS_PORT (a thread of its own)."""
    from prometheus_client import start_http_server

    settings = runtime.settings
    assert settings.metrics_port is not None
    start_http_server(settings.metrics_port, settings.host, runtime.service.metrics.registry)
    log.info("metrics served", url=f"http://{settings.host}:{settings.metrics_port}/metrics")


async def _follow_parent(job_worker: Worker, channel_fd: int, runtime: Runtime) -> None:
    from jobqueue.supervisor import follow_parent

    await job_worker.started.wait()
    follow_parent(channel_fd, runtime.broker.wake)


def _on_signals(stop: Any) -> None:
    """The first SIGTERM or SIGINT stops gracefully (exit status 0); a second one exits at
    once with 128 + its number, the shell's convention (130 for Ctrl-C, 143 for SIGTERM).
    Jobs still running then go back as after a crash: when their lease runs out."""
    loop = asyncio.get_running_loop()
    received: list[int] = []

    def handle(signum: int) -> None:
        name = signal.Signals(signum).name
        if received:
            log.warning(
                "second signal: exiting now; running jobs run again after their lease",
                signal=name,
                exit_status=128 + signum,
            )
            sys.stderr.flush()
            os._exit(128 + signum)
        received.append(signum)
        log.info("signal received; shutting down (send it again to exit at once)", signal=name)
        stop()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, handle, signum)


def _redacted(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    credentials, at, location = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{location}"
