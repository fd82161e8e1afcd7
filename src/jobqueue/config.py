"""Settings, read from the environment and `.env`, with the Node service's names kept."""

from __future__ import annotations

import re
from datetime import timedelta
from functools import cached_property
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from jobqueue.domain.retry import RetryPolicy
from jobqueue.domain.schedules import parse_schedules

CommaList = Annotated[list[str], NoDecode]

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")


def parse_duration(value: object) -> object:
    """``7d``, ``12h``, ``30m``, ``90s``, ``500ms`` or a number of seconds, as a timedelta;
    anything else is left for pydantic to refuse (or take, if already a timedelta)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if not isinstance(value, str):
        return value
    match = _DURATION.match(value)
    if match is None:
        raise ValueError(f"{value!r} is not a duration: write it like 7d, 12h, 30m, 90s or 0")
    number, unit = match.groups()
    return timedelta(seconds=float(number) * _UNITS[unit or "s"])


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    """Every setting of jobqueue; the README lists them with their defaults."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    database_url: str = "sqlite:///./jobqueue.db"
    """Where jobs live: a SQLite file (default) or ``postgresql://user:pass@host:5432/db``."""
    redis_url: str | None = None
    """Redis for the BullMQ queue; unset means the jobs table is the queue."""
    redis_host: str | None = None
    """The Node service's way to name Redis: host (with REDIS_PORT)."""
    redis_port: int = 6379
    """The Node service's way to name Redis: port (with REDIS_HOST)."""
    host: str = "127.0.0.1"
    """Address the API listens on."""
    port: int = Field(default=3000, ge=0, le=65535)
    """Port the API listens on."""
    cors_origin: CommaList = ["http://localhost:5173"]
    """Comma-separated exact origins allowed by CORS."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Least severe level logged."""
    log_format: Literal["auto", "json", "console"] = "auto"
    """``auto``: readable in a terminal, JSON lines otherwise."""
    worker_concurrency: int = Field(default=5, ge=1, le=1000)
    """Jobs run at once per worker process."""
    worker_processes: int | None = Field(default=None, ge=0, le=64)
    """``jobqueue serve``: worker processes started beside the API process, so that the API
    and the worker each get a core; 0 runs the worker inside the API process. Unset: 0 on
    SQLite (one process, the file's only writer), 1 on PostgreSQL."""
    worker_prefetch: int = Field(default=10, ge=0, le=10000)
    """Jobs a worker takes ahead of its free handler slots (claimed from the table, or
    delivered by BullMQ), so that a finished job's slot is refilled at once and one round trip
    serves many jobs. They count as processing."""
    worker_prefetch_max: int = Field(default=100, ge=0, le=10000)
    """Redis mode: while every fetch finds a job (a backlog), the prefetch doubles from
    WORKER_PREFETCH up to this, for bigger batches; it falls back to WORKER_PREFETCH as soon
    as a fetch finds the queue empty, so an idle worker stays quick to answer. Never below
    WORKER_PREFETCH."""
    job_max_attempts: int = Field(default=5, ge=1, le=100)
    """Attempts before a job fails for good (a job may set its own maxAttempts)."""
    job_backoff_ms: int = Field(default=2000, ge=0)
    """Wait before the first retry; doubles after each failed attempt."""
    job_timeout_ms: int = Field(default=300000, ge=1)
    """Longest one attempt may run (a handler may set its own ``timeout_ms``): then its
    handler is cancelled (a plain function's thread is abandoned: Python cannot stop it), its
    slot is freed, and the attempt fails and is retried like any other failure."""
    job_result_max_bytes: int = Field(default=65536, ge=0)
    """Largest handler result stored (as JSON text, in bytes); a larger one, or one that is
    not JSON, fails the attempt with an error that says so."""
    job_cancel_grace_ms: int = Field(default=5000, ge=0)
    """After a running job is cancelled, how long its handler may take to stop by itself
    (it sees ``ctx.cancelled``) before it is cancelled (a plain function's thread abandoned)."""
    job_lease_ms: int = Field(default=30000, ge=1000)
    """How long a claimed job stays claimed without renewal; a dead worker's jobs rerun after."""
    job_poll_interval_ms: int = Field(default=1000, ge=10)
    """How often an idle worker looks for jobs created by other processes."""
    shutdown_grace_ms: int = Field(default=30000, ge=0)
    """On SIGTERM, how long running jobs may finish before they are handed back."""
    max_payload_bytes: int = Field(default=1048576, ge=1024)
    """Request bodies larger than this are answered 413."""
    api_keys: CommaList = []
    """Comma-separated keys; when set, every /api route needs ``Authorization: Bearer <key>``,
    and so does /metrics unless METRICS_PUBLIC is true."""
    metrics_public: bool = False
    """Serve /metrics without the API key even when API_KEYS is set (a scraper on a private
    network that cannot send a bearer token)."""
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    """``jobqueue worker`` only: serve that worker's own metrics on HOST:METRICS_PORT
    (``/metrics``, no key); unset: none. ``serve``'s /metrics already includes its workers."""
    jobqueue_handlers: CommaList = []
    """Comma-separated modules to import for their ``@handler`` functions."""
    accept_unknown_types: bool = False
    """Accept jobs of types with no local handler (an API serving remote workers)."""
    smtp_url: str | None = None
    """``smtp://user:pass@host:port`` (or ``smtps://``) for ``send-email``; unset: outbox files."""
    outbox_dir: str = "./outbox"
    """Where ``send-email`` writes ``.eml`` files when SMTP_URL is unset."""
    db_timeout_ms: int = Field(default=5000, ge=100)
    """Longest wait for the database before a request answers 503."""
    db_pool_size: int = Field(default=10, ge=1, le=500)
    """PostgreSQL connections kept open per process (as many more may open under bursts)."""
    redis_timeout_ms: int = Field(default=1500, ge=50)
    """Longest wait for one Redis call on a request path (enqueue, withdraw, /health)."""
    reconcile_interval_ms: int = Field(default=10000, ge=50)
    """Redis mode: how often the reconciler re-enqueues pending jobs missing from the queue;
    a job left without a queue entry (crash, outage, flushed Redis) runs again within about
    twice this time."""
    schedules: str = ""
    """Recurring jobs: ``type=cron`` entries separated by ``;`` (UTC), e.g.
    ``report=0 3 * * *; cleanup=*/15 * * * *``; a type named here takes this cron instead of
    its handler's."""
    retain_completed: timedelta = timedelta(days=7)
    """How long completed and cancelled jobs are kept after they finished (``7d``, ``12h``,
    ``30m``, ``90s``); workers delete older ones every minute, in small batches. ``0`` keeps
    them (``jobqueue prune`` still deletes on demand). Failed jobs and dead letters stay until
    deleted, and a parent stays until its children have finished."""
    reconcile_batch: int = Field(default=500, ge=1, le=10000)
    """Redis mode: most jobs the reconciler checks per round (bounds each round's work)."""

    _durations = field_validator("retain_completed", mode="before")(parse_duration)

    @field_validator("schedules")
    @classmethod
    def _readable_schedules(cls, value: str) -> str:
        parse_schedules(value)  # refuse at start what the scheduler could not read
        return value

    _split = field_validator("cors_origin", "api_keys", "jobqueue_handlers", mode="before")(
        _split_commas
    )

    @cached_property
    def retry_policy(self) -> RetryPolicy:
        """The retry rule these settings describe."""
        return RetryPolicy(self.job_max_attempts, self.job_backoff_ms)

    @property
    def serve_worker_processes(self) -> int:
        """WORKER_PROCESSES, or its default for this database."""
        if self.worker_processes is not None:
            return self.worker_processes
        return 0 if self.database_url.lower().startswith("sqlite") else 1

    @property
    def queue_url(self) -> str | None:
        """Redis URL from REDIS_URL, or from the Node service's REDIS_HOST and REDIS_PORT."""
        if self.redis_url:
            return self.redis_url
        if self.redis_host:
            return f"redis://{self.redis_host}:{self.redis_port}"
        return None
