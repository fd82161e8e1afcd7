"""Run one attempt of a job through its handler and say how it went."""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import cast

import structlog

from jobqueue.config import Settings
from jobqueue.domain.jobs import Job, JSONObject
from jobqueue.domain.outcome import Failed, Outcome, Succeeded
from jobqueue.handlers.registry import (
    HandlerRegistry,
    HandlerResult,
    JobContext,
    PermanentError,
    RegisteredHandler,
)

log = structlog.get_logger(__name__)


class JobExecutor:
    """Calls handlers: coroutines on the event loop, plain functions in a thread pool."""

    def __init__(self, registry: HandlerRegistry, settings: Settings) -> None:
        self.registry = registry
        self.settings = settings

    async def execute(self, job: Job) -> Outcome:
        """Run ``job``'s handler once; every exception becomes a ``Failed`` outcome."""
        registered = self.registry.get(job.type)
        if registered is None:
            return Failed(f"no handler for job type '{job.type}' in this worker", permanent=True)
        ctx = JobContext(job.id, job.type, job.attempts, job.max_attempts, self.settings)
        started = time.perf_counter()
        log.info("job started")
        try:
            result = await _call(registered, job.payload, ctx)
        except PermanentError as exc:
            return self._failed(exc, started, permanent=True)
        except Exception as exc:
            return self._failed(exc, started, permanent=False)
        log.info("job succeeded", duration_ms=_ms_since(started), result=result)
        return Succeeded(result)

    @staticmethod
    def _failed(exc: Exception, started: float, *, permanent: bool) -> Failed:
        error = str(exc) if isinstance(exc, PermanentError) else f"{type(exc).__name__}: {exc}"
        log.warning(
            "job attempt failed", error=error, permanent=permanent, duration_ms=_ms_since(started)
        )
        return Failed(error[:4000], permanent=permanent)


async def _call(
    registered: RegisteredHandler, payload: JSONObject, ctx: JobContext
) -> HandlerResult:
    result: object
    if registered.is_async:
        result = registered.func(payload, ctx)
    else:
        result = await asyncio.to_thread(registered.func, payload, ctx)
    # A callable object with an async __call__ is not seen as a coroutine function.
    if inspect.isawaitable(result):
        result = await result
    return cast(HandlerResult, result)


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
