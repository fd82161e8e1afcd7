"""Map job types to handler functions, and load the modules that register them."""

from __future__ import annotations

import asyncio
import importlib
import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from jobqueue.domain.jobs import JSONObject, JSONValue
from jobqueue.domain.limits import TypeLimit
from jobqueue.domain.retry import Backoff, RetryPolicies, RetryPolicy
from jobqueue.domain.schedules import Schedule

if TYPE_CHECKING:
    from jobqueue.config import Settings

HandlerResult = JSONValue
"""What a handler may return: any JSON value, stored as the job's ``result``."""
Handler = Callable[[JSONObject, "JobContext"], Awaitable[HandlerResult] | HandlerResult]
H = TypeVar("H", bound=Callable[..., Any])

BUILTIN_MODULES = ("jobqueue.handlers.builtin",)
MAX_PROGRESS_MESSAGE = 1000


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
    reporter: Callable[[int, str | None], None] | None = field(
        default=None, repr=False, compare=False
    )
    """Where progress goes (the worker's writer); None: nowhere (a handler called directly)."""
    parent_results: Mapping[UUID, JSONValue] = field(default_factory=dict, repr=False)
    """The results of the jobs this one waited for (``dependsOn``, or a flow), by parent job
    id; a parent that did not complete (``onParentFailure: "continue"``) maps to None.
    Empty for a job that depends on none."""
    cancelled: asyncio.Event = field(default_factory=asyncio.Event, repr=False, compare=False)
    """Set when the job is cancelled while this attempt runs: ``await ctx.cancelled.wait()``
    or check ``ctx.cancelled.is_set()`` and stop. An ``async`` handler still running
    JOB_CANCEL_GRACE_MS later is cancelled; a plain function's thread is abandoned."""

    async def progress(self, percent: int, message: str | None = None) -> None:
        """Say how far this attempt has come, 0 to 100, with an optional message: shown as
        the job's ``progress`` and ``progressMessage`` while it runs. Call it as often as you
        like: each worker process writes progress at most four times a second."""
        self.report_progress(percent, message)

    def report_progress(self, percent: int, message: str | None = None) -> None:
        """``progress`` for plain-function handlers (they run in a thread of their own)."""
        if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
            raise ValueError(f"progress is a whole number from 0 to 100, got {percent!r}")
        if message is not None and (len(message) > MAX_PROGRESS_MESSAGE or "\x00" in message):
            raise ValueError(
                f"a progress message has at most {MAX_PROGRESS_MESSAGE} characters and no U+0000"
            )
        if self.reporter is not None:
            self.reporter(percent, message)


@dataclass(frozen=True, slots=True)
class TypePolicy:
    """What a handler declares for its job type; None leaves a setting's value in force."""

    timeout_ms: int | None = None
    """Longest one attempt may run; None: JOB_TIMEOUT_MS."""
    max_attempts: int | None = None
    """Attempts of a job that does not give its own maxAttempts; None: JOB_MAX_ATTEMPTS."""
    backoff_ms: int | None = None
    """The first wait between attempts; None: JOB_BACKOFF_MS."""
    backoff: Backoff | None = None
    """``exponential`` (the default) or ``fixed``."""

    def __post_init__(self) -> None:
        if self.timeout_ms is not None and self.timeout_ms < 1:
            raise ValueError(f"timeout_ms must be at least 1, got {self.timeout_ms}")
        if self.max_attempts is not None and not 1 <= self.max_attempts <= 100:
            raise ValueError(f"max_attempts must be 1 to 100, got {self.max_attempts}")
        if self.backoff_ms is not None and self.backoff_ms < 0:
            raise ValueError(f"backoff_ms must not be negative, got {self.backoff_ms}")

    def retry_policy(self, default: RetryPolicy) -> RetryPolicy | None:
        """``default`` with this type's overrides, or None when it overrides none."""
        if self.max_attempts is None and self.backoff_ms is None and self.backoff is None:
            return None
        return RetryPolicy(
            self.max_attempts or default.max_attempts,
            default.backoff_ms if self.backoff_ms is None else self.backoff_ms,
            self.backoff or default.backoff,
        )


@dataclass(frozen=True, slots=True)
class RegisteredHandler:
    """A handler, whether it must run in a thread, and its type's own policies."""

    func: Handler
    is_async: bool
    policy: TypePolicy = TypePolicy()
    schedule: Schedule | None = None
    """Make a job of this type at every tick of a cron expression."""
    limit: TypeLimit | None = None
    """Concurrency and rate limits of this type over all worker processes."""

    @property
    def timeout_ms(self) -> int | None:
        """Longest one attempt may run; None: JOB_TIMEOUT_MS."""
        return self.policy.timeout_ms


class HandlerRegistry:
    """Job type -> handler."""

    def __init__(self) -> None:
        self._handlers: dict[str, RegisteredHandler] = {}

    def register(
        self,
        job_type: str,
        func: Handler,
        policy: TypePolicy | None = None,
        schedule: Schedule | None = None,
        limit: TypeLimit | None = None,
    ) -> None:
        """Register ``func`` for ``job_type``; a second handler for one type is an error."""
        if not 1 <= len(job_type) <= 100:
            raise ValueError("a job type has 1 to 100 characters")
        known = self._handlers.get(job_type)
        if known is not None and known.func is not func:
            raise ValueError(f"job type '{job_type}' already has a handler: {known.func!r}")
        is_async = inspect.iscoroutinefunction(func)
        self._handlers[job_type] = RegisteredHandler(
            func, is_async, policy or TypePolicy(), schedule, limit
        )

    def limits(self) -> dict[str, TypeLimit]:
        """The types whose handlers declare ``concurrency`` or ``rate``, with their limits."""
        return {t: h.limit for t, h in self._handlers.items() if h.limit is not None}

    def schedules(self) -> list[Schedule]:
        """The recurring jobs handlers declare (``cron=``)."""
        return [h.schedule for h in self._handlers.values() if h.schedule is not None]

    def retry_policies(self, default: RetryPolicy) -> RetryPolicies:
        """``default``, and the policy of every type whose handler declares its own."""
        by_type = {
            job_type: policy
            for job_type, registered in self._handlers.items()
            if (policy := registered.policy.retry_policy(default)) is not None
        }
        return RetryPolicies(default, by_type)

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
    job_type: str,
    *,
    timeout_ms: int | None = None,
    max_attempts: int | None = None,
    backoff_ms: int | None = None,
    backoff: Backoff | str | None = None,
    cron: str | None = None,
    concurrency: int | None = None,
    rate: int | None = None,
    into: HandlerRegistry | None = None,
) -> Callable[[H], H]:
    """Register the decorated function as the handler of ``job_type``.

    The function takes ``(payload: dict, ctx: JobContext)`` and may be ``async``;
    a plain function runs in a thread of its own. What it returns is the job's result.
    The options override settings for this type: ``timeout_ms`` (JOB_TIMEOUT_MS),
    ``max_attempts`` (JOB_MAX_ATTEMPTS; a job's own maxAttempts still wins), ``backoff_ms``
    (JOB_BACKOFF_MS) and ``backoff``, ``"exponential"`` or ``"fixed"``. ``cron`` makes a job
    of this type (empty payload) at every tick of a cron expression, in UTC.
    ``concurrency`` and ``rate`` bound the jobs of this type running at once and started per
    second over all worker processes sharing the database.
    """
    try:
        kind = None if backoff is None else Backoff(backoff)
        policy = TypePolicy(timeout_ms, max_attempts, backoff_ms, kind)
        schedule = None if cron is None else Schedule(job_type, cron)
        limited = concurrency is not None or rate is not None
        limit = TypeLimit(concurrency, rate) if limited else None
    except ValueError as exc:
        raise ValueError(f"@handler('{job_type}'): {exc}") from exc

    def decorate(func: H) -> H:
        (into or registry).register(job_type, func, policy, schedule, limit)
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
