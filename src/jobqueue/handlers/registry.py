"""Map job types to handler functions, and load the modules that register them."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from jobqueue.domain.jobs import JSONObject, JSONValue

if TYPE_CHECKING:
    from jobqueue.config import Settings

HandlerResult = JSONValue
"""What a handler may return: any JSON value, stored as the job's ``result``."""
Handler = Callable[[JSONObject, "JobContext"], Awaitable[HandlerResult] | HandlerResult]
H = TypeVar("H", bound=Callable[..., Any])

BUILTIN_MODULES = ("jobqueue.handlers.builtin",)


class PermanentError(Exception):
    """Raise from a handler to fail the job at once, without further attempts."""


class HandlerLoadError(Exception):
    """A handler module named in JOBQUEUE_HANDLERS could not be imported."""


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a handler knows about the run it is part of."""

    job_id: UUID
    """The job's id: use it to make side effects idempotent (delivery is at least once)."""
    type: str
    """The job's type."""
    attempt: int
    """This attempt's number, 1 for the first."""
    max_attempts: int
    """The attempt after which a failure is final."""
    settings: Settings
    """The process's settings, for handlers that need configuration."""


@dataclass(frozen=True, slots=True)
class RegisteredHandler:
    """A handler, whether it must run in a thread, and its own policies."""

    func: Handler
    is_async: bool
    timeout_ms: int | None = None
    """Longest one attempt may run; None: JOB_TIMEOUT_MS."""


class HandlerRegistry:
    """Job type -> handler."""

    def __init__(self) -> None:
        self._handlers: dict[str, RegisteredHandler] = {}

    def register(self, job_type: str, func: Handler, *, timeout_ms: int | None = None) -> None:
        """Register ``func`` for ``job_type``; a second handler for one type is an error."""
        if not 1 <= len(job_type) <= 100:
            raise ValueError("a job type has 1 to 100 characters")
        if timeout_ms is not None and timeout_ms < 1:
            raise ValueError(f"timeout_ms of '{job_type}' must be at least 1, got {timeout_ms}")
        known = self._handlers.get(job_type)
        if known is not None and known.func is not func:
            raise ValueError(f"job type '{job_type}' already has a handler: {known.func!r}")
        is_async = inspect.iscoroutinefunction(func)
        self._handlers[job_type] = RegisteredHandler(func, is_async, timeout_ms)

    def get(self, job_type: str) -> RegisteredHandler | None:
        """The handler for ``job_type``, or None."""
        return self._handlers.get(job_type)

    def types(self) -> list[str]:
        """Every registered job type, sorted."""
        return sorted(self._handlers)

    def __contains__(self, job_type: object) -> bool:
        return job_type in self._handlers


registry = HandlerRegistry()
"""The process-wide registry that ``@handler`` fills."""


def handler(
    job_type: str, *, timeout_ms: int | None = None, into: HandlerRegistry | None = None
) -> Callable[[H], H]:
    """Register the decorated function as the handler of ``job_type``.

    The function takes ``(payload: dict, ctx: JobContext)`` and may be ``async``;
    a plain function runs in a thread of its own. Its return value is logged.
    ``timeout_ms`` overrides JOB_TIMEOUT_MS for this type.
    """

    def decorate(func: H) -> H:
        (into or registry).register(job_type, func, timeout_ms=timeout_ms)
        return func

    return decorate


def load_handler_modules(modules: Iterable[str]) -> HandlerRegistry:
    """Import the built-in handlers and ``modules``; returns the filled registry."""
    for name in (*BUILTIN_MODULES, *modules):
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise HandlerLoadError(
                f"cannot import handler module '{name}' ({exc}); check JOBQUEUE_HANDLERS "
                "and that the module is importable from the current directory or PYTHONPATH"
            ) from exc
    return registry
