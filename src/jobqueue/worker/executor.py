"""Run one attempt of a job through its handler and say how it went."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import json
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from uuid import UUID

import structlog

from jobqueue.config import Settings
from jobqueue.domain.jobs import Job, JSONObject, JSONValue, ProgressReport, utcnow
from jobqueue.domain.json_values import unstorable
from jobqueue.domain.outcome import Failed, Outcome, Succeeded
from jobqueue.handlers.registry import (
    HandlerRegistry,
    HandlerResult,
    JobContext,
    PermanentError,
    RegisteredHandler,
)

log = structlog.get_logger(__name__)

ParentResults = Callable[[UUID], Awaitable[Mapping[UUID, JSONValue]]]
"""Reads the results of the jobs a job waited for, by parent id."""

CANCELLED = "CancelledError: the job was cancelled while this attempt ran"


class JobExecutor:
    """Calls handlers: coroutines on the event loop, plain functions each in a thread of its own."""

    def __init__(
        self,
        registry: HandlerRegistry,
        settings: Settings,
        progress: Callable[[ProgressReport], None] | None = None,
        parent_results: ParentResults | None = None,
    ) -> None:
        """``progress`` takes handlers' progress reports, from any thread; ``parent_results``
        reads what a job's parents returned (``ctx.parent_results``)."""
        self.registry = registry
        self.settings = settings
        self.parent_results = parent_results
        self.max_result_bytes = settings.job_result_max_bytes
        self.progress = progress
        self._running: dict[UUID, tuple[JobContext, asyncio.Timeout]] = {}

    def running(self) -> list[UUID]:
        """The jobs whose handler runs now."""
        return list(self._running)

    def cancel(self, job_id: UUID, grace_s: float) -> None:
        """The job was cancelled: tell its handler (``ctx.cancelled``) and end it after
        ``grace_s`` if it has not stopped by then."""
        run = self._running.get(job_id)
        if run is None or run[0].cancelled.is_set():
            return
        ctx, deadline = run
        ctx.cancelled.set()
        stop_at = asyncio.get_running_loop().time() + grace_s
        deadline.reschedule(min(stop_at, deadline.when() or stop_at))
        log.info("job cancelled while it runs; its handler is told", grace_s=grace_s)

    async def execute(self, job: Job) -> Outcome:
        """Run ``job``'s handler once; every exception becomes a ``Failed`` outcome, and so
        does a result that cannot be stored, and any ending after a cancel."""
        registered = self.registry.get(job.type)
        if registered is None:
            return Failed(f"no handler for job type '{job.type}' in this worker", permanent=True)
        began = Began(utcnow(), time.perf_counter())
        try:
            parents = await self._parents_of(job)
        except Exception as exc:
            return self._failed(exc, began, permanent=False)  # the database: try again later
        ctx = JobContext(
            job.id,
            job.type,
            job.attempts,
            job.max_attempts,
            self.settings,
            self._reporter(job),
            parent_results=parents,
        )
        log.info("job started")
        try:
            outcome = await self._run(job, registered, ctx, began)
        finally:
            self._running.pop(job.id, None)
        if ctx.cancelled.is_set():
            return Failed(CANCELLED, permanent=True, started_at=began.at, duration_ms=began.ms())
        return outcome

    async def _run(
        self, job: Job, registered: RegisteredHandler, ctx: JobContext, began: Began
    ) -> Outcome:
        timeout_ms = registered.timeout_ms or self.settings.job_timeout_ms
        try:
            async with asyncio.timeout(timeout_ms / 1000) as deadline:
                self._running[job.id] = (ctx, deadline)
                result = await _call(registered, job.payload, ctx)
        except PermanentError as exc:
            return self._failed(exc, began, permanent=True)
        except TimeoutError:
            if ctx.cancelled.is_set():
                return Failed(CANCELLED, permanent=True)
            return self._timed_out(timeout_ms, registered, began)
        except Exception as exc:
            return self._failed(exc, began, permanent=False)
        problem = None if result is None else unstorable_result(result, self.max_result_bytes)
        if problem is not None:
            log.warning("job attempt failed", error=problem, duration_ms=began.ms())
            return Failed(problem, started_at=began.at, duration_ms=began.ms())
        log.info("job succeeded", duration_ms=began.ms(), result=result)
        return Succeeded(result, started_at=began.at, duration_ms=began.ms())

    async def _parents_of(self, job: Job) -> Mapping[UUID, JSONValue]:
        """The parents' results of a job that waited for some; read only for those."""
        if job.pending_parents is None or self.parent_results is None:
            return {}
        return await self.parent_results(job.id)

    def _reporter(self, job: Job) -> Callable[[int, str | None], None] | None:
        progress = self.progress
        if progress is None:
            return None
        return lambda percent, message: progress(
            ProgressReport(job.id, job.lease_owner, percent, message)
        )

    @staticmethod
    def _timed_out(timeout_ms: int, registered: RegisteredHandler, began: Began) -> Failed:
        source = "its handler's timeout_ms" if registered.timeout_ms else "JOB_TIMEOUT_MS"
        error = f"TimeoutError: the attempt ran longer than {timeout_ms} ms ({source})"
        log.warning(
            "job attempt timed out; handler cancelled"
            if registered.is_async
            else "job attempt timed out; its thread is abandoned and may still be running",
            error=error,
            duration_ms=began.ms(),
        )
        return Failed(error, permanent=False, started_at=began.at, duration_ms=began.ms())

    @staticmethod
    def _failed(exc: Exception, began: Began, *, permanent: bool) -> Failed:
        error = str(exc) if isinstance(exc, PermanentError) else f"{type(exc).__name__}: {exc}"
        log.warning("job attempt failed", error=error, permanent=permanent, duration_ms=began.ms())
        return Failed(error[:4000], permanent, started_at=began.at, duration_ms=began.ms())


@dataclass(frozen=True, slots=True)
class Began:
    """When a handler was called: the wall clock for the history, a monotonic one to time it."""

    at: datetime
    clock: float

    def ms(self) -> float:
        """Milliseconds since the call."""
        return round((time.perf_counter() - self.clock) * 1000, 2)


def unstorable_result(result: JSONValue, max_bytes: int) -> str | None:
    """Why a handler's result cannot be stored, or None when it can."""
    try:
        encoded = json.dumps(result, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        return f"ResultError: the handler returned a value that is not JSON: {exc}"
    problem = unstorable(result)
    if problem is not None:
        path, reason = problem
        where = "/".join(["result", *map(str, path)])
        return f"ResultError: the handler's result cannot be stored: {where}: {reason}"
    size = len(encoded.encode())
    if size > max_bytes:
        return (
            f"ResultError: the handler's result is {size} bytes, more than "
            f"JOB_RESULT_MAX_BYTES ({max_bytes})"
        )
    return None


async def _call(
    registered: RegisteredHandler, payload: JSONObject, ctx: JobContext
) -> HandlerResult:
    result: object
    if registered.is_async:
        result = registered.func(payload, ctx)
    else:
        result = await in_own_thread(registered.func, payload, ctx)
    # A callable object with an async __call__ is not seen as a coroutine function.
    if inspect.isawaitable(result):
        result = await result
    return cast(HandlerResult, result)


async def in_own_thread(func: Callable[..., Any], *args: Any) -> Any:
    """``func(*args)`` in a new daemon thread, with the caller's context variables.

    Not a thread pool: a handler that times out cannot be stopped, and in a pool each one
    abandoned would hold a pool thread for good, until later jobs queue behind them. Here it
    holds only its own thread, which does not keep the process from exiting.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Any] = loop.create_future()
    context = contextvars.copy_context()

    def settle(value: Any, error: BaseException | None) -> None:
        if done.done():  # abandoned meanwhile: nobody waits for it
            return
        if error is None:
            done.set_result(value)
        else:
            done.set_exception(error)

    def body() -> None:
        value, error = None, None
        try:
            value = context.run(func, *args)
        except BaseException as exc:
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop closed while it ran
            loop.call_soon_threadsafe(settle, value, error)

    threading.Thread(target=body, name="jobqueue-handler", daemon=True).start()
    return await done
