"""Running one attempt: outcomes from handlers of every kind."""

from __future__ import annotations

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
