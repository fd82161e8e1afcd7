"""Run one attempt of a job through its handler and say how it went."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import threading
import time
from collections.abc import Callable
from typing import Any, cast

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
    """Calls handlers: coroutines on the event loop, plain functions each in a thread of its own."""

    def __init__(self, registry: HandlerRegistry, settings: Settings) -> None:
        self.registry = registry
        self.settings = settings

    async def execute(self, job: Job) -> Outcome:
        """Run ``job``'s handler once; every exception becomes a ``Failed`` outcome."""
        registered = self.registry.get(job.type)
        if registered is None:
            return Failed(f"no handler for job type '{job.type}' in this worker", permanent=True)
        ctx = JobContext(job.id, job.type, job.attempts, job.max_attempts, self.settings)
        timeout_ms = registered.timeout_ms or self.settings.job_timeout_ms
        started = time.perf_counter()
        log.info("job started")
        try:
            async with asyncio.timeout(timeout_ms / 1000):
                result = await _call(registered, job.payload, ctx)
        except PermanentError as exc:
            return self._failed(exc, started, permanent=True)
        except TimeoutError:
            return self._timed_out(timeout_ms, registered, started)
        except Exception as exc:
            return self._failed(exc, started, permanent=False)
        log.info("job succeeded", duration_ms=_ms_since(started), result=result)
        return Succeeded(result)

    @staticmethod
    def _timed_out(timeout_ms: int, registered: RegisteredHandler, started: float) -> Failed:
        source = "its handler's timeout_ms" if registered.timeout_ms else "JOB_TIMEOUT_MS"
        error = f"TimeoutError: the attempt ran longer than {timeout_ms} ms ({source})"
        log.warning(
            "job attempt timed out; handler cancelled"
            if registered.is_async
            else "job attempt timed out; its thread is abandoned and may still be running",
            error=error,
            duration_ms=_ms_since(started),
        )
        return Failed(error, permanent=False)

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


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
