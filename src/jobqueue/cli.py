"""The ``jobqueue`` command: serve, api, worker, migrate, prune."""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer
from pydantic import ValidationError

from jobqueue.config import Settings
from jobqueue.logs import configure_logging
from jobqueue.ops_cli import register as register_operator_commands
from jobqueue.server import ProcessPlan

app = typer.Typer(
    help="jobqueue: background jobs over HTTP. Settings come from the environment and .env.",
    no_args_is_help=True,
    add_completion=False,
)
register_operator_commands(app)  # jobs, dlq, enqueue: a running server's HTTP API

Host = Annotated[
    str | None, typer.Option(help="Address to listen on (default: HOST or 127.0.0.1).")
]
Port = Annotated[int | None, typer.Option(help="Port to listen on (default: PORT or 3000).")]
NoMigrate = Annotated[
    bool, typer.Option("--no-migrate", help="Do not apply database migrations at start.")
]
Insecure = Annotated[
    bool,
    typer.Option("--insecure", help="Allow a non-loopback address without API_KEYS."),
]
WorkerProcesses = Annotated[
    int | None,
    typer.Option(
        help="Worker processes beside the API (default: WORKER_PROCESSES or 1; 0: "
        "the worker runs inside the API process)."
    ),
]
Concurrency = Annotated[
    int | None, typer.Option(help="Jobs run at once (default: WORKER_CONCURRENCY or 5).")
]


@app.command()
def serve(  # noqa: PLR0917 - typer maps each parameter to an option
    host: Host = None,
    port: Port = None,
    concurrency: Concurrency = None,
    worker_processes: WorkerProcesses = None,
    no_migrate: NoMigrate = False,
    insecure: Insecure = False,
) -> None:
    """Run the API and the worker (the embedded default): the worker in its own process."""
    settings = _settings(
        host=host, port=port, worker_concurrency=concurrency, worker_processes=worker_processes
    )
    _check_exposure(settings, insecure)
    plan = ProcessPlan(True, True, not no_migrate, settings.serve_worker_processes)
    _run(settings, plan)


@app.command()
def api(
    host: Host = None, port: Port = None, no_migrate: NoMigrate = False, insecure: Insecure = False
) -> None:
    """Run only the HTTP API (workers run elsewhere)."""
    settings = _settings(host=host, port=port)
    _check_exposure(settings, insecure)
    _run(settings, ProcessPlan(api=True, worker=False, migrate=not no_migrate))


@app.command()
def worker(concurrency: Concurrency = None) -> None:
    """Run only a worker: claim jobs and run their handlers."""
    settings = _settings(worker_concurrency=concurrency)
    _run(settings, ProcessPlan(api=False, worker=True, migrate=False))


@app.command()
def migrate() -> None:
    """Apply pending database migrations to DATABASE_URL, then exit."""
    from jobqueue.store.migrate import migrate as apply

    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)
    apply(settings.database_url)
    typer.echo("migrations applied: the database is up to date")


OlderThan = Annotated[
    str | None,
    typer.Option(
        help="Delete jobs that finished longer ago than this: 7d, 12h, 30m, 0 (default: "
        "RETAIN_COMPLETED, 7d)."
    ),
]


@app.command()
def prune(older_than: OlderThan = None) -> None:
    """Delete completed and cancelled jobs that finished longer ago than the given age (their
    history and idempotency keys go with them; failed jobs and dead letters stay)."""
    import asyncio

    from jobqueue.config import parse_duration
    from jobqueue.store.base import StoreError

    if older_than is not None:
        try:
            parse_duration(older_than)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--older-than") from exc
    settings = _settings() if older_than is None else _settings(retain_completed=older_than)
    configure_logging(settings.log_level, settings.log_format)
    try:
        deleted = asyncio.run(_prune(settings))
    except StoreError as exc:
        typer.echo(
            f"cannot prune: {exc}. Is DATABASE_URL right, and migrated (jobqueue migrate)?",
            err=True,
        )
        raise typer.Exit(1) from exc
    age = older_than or f"{settings.retain_completed.total_seconds():g}s"
    typer.echo(f"deleted {deleted} completed or cancelled jobs that finished more than {age} ago")


async def _prune(settings: Settings) -> int:
    from jobqueue.runtime import Runtime

    runtime = Runtime.build(settings)
    try:
        return await runtime.service.prune(settings.retain_completed)
    finally:
        await runtime.close()


def _settings(**overrides: object) -> Settings:
    given = {name: value for name, value in overrides.items() if value is not None}
    try:
        return Settings(**given)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise typer.BadParameter(f"invalid setting: {problems}") from exc


def _check_exposure(settings: Settings, insecure: bool) -> None:
    if _is_loopback(settings.host) or settings.api_keys or insecure:
        return
    typer.echo(
        f"Refusing to listen on {settings.host} without API keys: anyone who can reach it could "
        "create and delete jobs. Set API_KEYS=<key1,key2> (clients send "
        "'Authorization: Bearer <key>'), or pass --insecure if a proxy guards it.",
        err=True,
    )
    raise typer.Exit(2)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _run(settings: Settings, plan: ProcessPlan) -> None:
    from jobqueue.server import run

    code = run(settings, plan)
    if code:
        raise typer.Exit(code)
