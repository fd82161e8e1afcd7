"""Running one attempt: outcomes from handlers of every kind."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from jobqueue.config import Settings
from jobqueue.domain.outcome import Failed, Succeeded
from jobqueue.handlers.registry import HandlerRegistry, JobContext, PermanentError, handler
from jobqueue.worker.executor import JobExecutor
from tests.unit.factories import make_job


@pytest.fixture
def registry() -> HandlerRegistry:
    """A private registry, so these handlers stay out of the process-wide one."""
    reg = HandlerRegistry()

    @handler("ok", into=reg)
    async def ok(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        return {"attempt": ctx.attempt, **payload}

    @handler("sync", into=reg)
    def sync(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        return {"in_main_thread": threading.current_thread() is threading.main_thread()}

    @handler("boom", into=reg)
    async def boom(payload: dict[str, Any], ctx: JobContext) -> None:
        raise ValueError("bad luck")

    @handler("never", into=reg)
    async def never(payload: dict[str, Any], ctx: JobContext) -> None:
        raise PermanentError("cannot work")

    return reg


def executor(registry: HandlerRegistry) -> JobExecutor:
    return JobExecutor(registry, Settings(_env_file=None))


async def test_a_handler_sees_its_attempt_and_its_result_is_kept(
    registry: HandlerRegistry,
) -> None:
    outcome = await executor(registry).execute(make_job(type="ok", attempts=2, payload={"a": 1}))
    assert outcome == Succeeded({"attempt": 2, "a": 1})


async def test_a_plain_function_runs_in_a_thread(registry: HandlerRegistry) -> None:
    outcome = await executor(registry).execute(make_job(type="sync", attempts=1))
    assert outcome == Succeeded({"in_main_thread": False})


async def test_an_exception_is_a_retryable_failure(registry: HandlerRegistry) -> None:
    outcome = await executor(registry).execute(make_job(type="boom", attempts=1))
    assert outcome == Failed("ValueError: bad luck", permanent=False)


async def test_permanent_error_ends_retries(registry: HandlerRegistry) -> None:
    outcome = await executor(registry).execute(make_job(type="never", attempts=1))
    assert outcome == Failed("cannot work", permanent=True)


async def test_a_type_without_handler_fails_permanently(registry: HandlerRegistry) -> None:
    outcome = await executor(registry).execute(make_job(type="unknown", attempts=1))
    assert isinstance(outcome, Failed)
    assert outcome.permanent


def test_two_handlers_for_one_type_are_refused(registry: HandlerRegistry) -> None:
    with pytest.raises(ValueError, match="already has a handler"):
        registry.register("ok", lambda payload, ctx: None)


async def test_a_hung_async_handler_is_cancelled_at_its_timeout_and_retried() -> None:
    reg = HandlerRegistry()
    cancelled = threading.Event()

    @handler("hang", timeout_ms=50, into=reg)
    async def hang(payload: dict[str, Any], ctx: JobContext) -> None:
        try:
            await asyncio.Event().wait()  # never set
        except asyncio.CancelledError:
            cancelled.set()
            raise

    outcome = await executor(reg).execute(make_job(type="hang", attempts=1))
    assert outcome == Failed(
        "TimeoutError: the attempt ran longer than 50 ms (its handler's timeout_ms)",
        permanent=False,
    )
    assert cancelled.is_set()


async def test_a_hung_thread_handler_is_abandoned_and_does_not_hold_later_jobs() -> None:
    reg = HandlerRegistry()
    release = threading.Event()

    @handler("stuck", into=reg)
    def stuck(payload: dict[str, Any], ctx: JobContext) -> None:
        release.wait(30)

    @handler("quick", into=reg)
    def quick(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        return {"done": True}

    run = JobExecutor(reg, Settings(_env_file=None, job_timeout_ms=50))
    try:
        # More stuck handlers than a default thread pool has threads on any machine here.
        stuck_outcomes = await asyncio.gather(
            *(run.execute(make_job(type="stuck", attempts=1)) for _ in range(40))
        )
        assert {o.error for o in stuck_outcomes if isinstance(o, Failed)} == {
            "TimeoutError: the attempt ran longer than 50 ms (JOB_TIMEOUT_MS)"
        }
        assert await run.execute(make_job(type="quick", attempts=1)) == Succeeded({"done": True})
    finally:
        release.set()


def test_a_timeout_below_one_millisecond_is_refused() -> None:
    with pytest.raises(ValueError, match=r"@handler\('x'\): timeout_ms must be at least 1"):
        handler("x", timeout_ms=0, into=HandlerRegistry())
