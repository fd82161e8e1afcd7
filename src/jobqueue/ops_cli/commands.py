"""The operator commands: ``jobqueue jobs ...``, ``jobqueue dlq ...`` and ``jobqueue enqueue``.

They talk to a running server over its HTTP API, through ``jobqueue.client``. Each body
imports ``actions`` when it runs: the client and its libraries stay out of ``jobqueue serve``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from jobqueue.domain.jobs import JobStatus
from jobqueue.ops_cli.options import ApiKey, AsJson, JobIdArg, Limit, Offset, Target, Url

jobs_app = typer.Typer(
    help="Look at and act on jobs of a running server (over its HTTP API).",
    no_args_is_help=True,
)
dlq_app = typer.Typer(
    help="The dead-letter queue of a running server: jobs that failed for good.",
    no_args_is_help=True,
)

StatusFilter = Annotated[JobStatus | None, typer.Option(help="Only jobs in this status.")]
TypeFilter = Annotated[str | None, typer.Option("--type", help="Only jobs of this type.")]


@jobs_app.command("list")
def list_jobs(  # noqa: PLR0917 - typer maps each parameter to an option
    status: StatusFilter = None,
    job_type: TypeFilter = None,
    limit: Limit = 100,
    offset: Offset = 0,
    url: Url = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """List jobs, newest first."""
    from jobqueue.ops_cli import actions

    actions.list_jobs(Target(url, api_key, as_json), status, job_type, limit, offset)


@jobs_app.command("show")
def show_job(
    job_id: JobIdArg, url: Url = None, api_key: ApiKey = None, as_json: AsJson = False
) -> None:
    """Show one job and its finished attempts."""
    from jobqueue.ops_cli import actions

    actions.show_job(Target(url, api_key, as_json), job_id)


@jobs_app.command("retry")
def retry_job(
    job_id: JobIdArg, url: Url = None, api_key: ApiKey = None, as_json: AsJson = False
) -> None:
    """Send a failed job back to pending, its attempts reset."""
    from jobqueue.ops_cli import actions

    actions.retry_job(Target(url, api_key, as_json), job_id)


@jobs_app.command("cancel")
def cancel_job(
    job_id: JobIdArg, url: Url = None, api_key: ApiKey = None, as_json: AsJson = False
) -> None:
    """Cancel a pending or running job."""
    from jobqueue.ops_cli import actions

    actions.cancel_job(Target(url, api_key, as_json), job_id)


@jobs_app.command("delete")
def delete_job(
    job_id: JobIdArg, url: Url = None, api_key: ApiKey = None, as_json: AsJson = False
) -> None:
    """Delete a job and its queued trigger."""
    from jobqueue.ops_cli import actions

    actions.delete_job(Target(url, api_key, as_json), job_id)


@jobs_app.command("stats")
def stats(url: Url = None, api_key: ApiKey = None, as_json: AsJson = False) -> None:
    """How many jobs are in each status."""
    from jobqueue.ops_cli import actions

    actions.stats(Target(url, api_key, as_json))


@jobs_app.command("retry-failed")
def retry_failed(
    job_type: Annotated[str | None, typer.Option("--type", help="Only jobs of this type.")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    url: Url = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Send every failed job (of one type) back to pending; asks first unless --yes."""
    from jobqueue.ops_cli import actions

    actions.retry_failed(Target(url, api_key, as_json), job_type, yes)


@dlq_app.command("list")
def list_dead_letters(
    limit: Limit = 100,
    offset: Offset = 0,
    url: Url = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """List dead letters, newest first."""
    from jobqueue.ops_cli import actions

    actions.list_dead_letters(Target(url, api_key, as_json), limit, offset)


@dlq_app.command("retry")
def retry_dead_letter(
    job_id: Annotated[str, typer.Argument(help="The dead letter's job id.", show_default=False)],
    url: Url = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Retry a dead letter's job: back to pending, its attempts reset."""
    from jobqueue.ops_cli import actions

    actions.retry_job(Target(url, api_key, as_json), job_id)


Payload = Annotated[str, typer.Option(help="The job's payload: a JSON object.", show_default="{}")]
MaxAttempts = Annotated[
    int | None, typer.Option(min=1, max=100, help="Attempts before it fails for good.")
]
DelayMs = Annotated[
    int | None, typer.Option(min=0, help="Run no earlier than this many milliseconds from now.")
]
Priority = Annotated[int | None, typer.Option(help="Lower runs first (default 0).")]
Key = Annotated[
    str | None,
    typer.Option(help="Idempotency key: the same key again gives the first job (default: fresh)."),
]


def enqueue(  # noqa: PLR0917 - typer maps each parameter to an option
    job_type: Annotated[str, typer.Argument(metavar="TYPE", help="The job's type.")],
    payload: Payload = "{}",
    max_attempts: MaxAttempts = None,
    delay_ms: DelayMs = None,
    priority: Priority = None,
    idempotency_key: Key = None,
    url: Url = None,
    api_key: ApiKey = None,
    as_json: AsJson = False,
) -> None:
    """Create a job on a running server."""
    from jobqueue.ops_cli import actions

    request = actions.EnqueueRequest(
        job_type, payload, max_attempts, delay_ms, priority, idempotency_key
    )
    actions.enqueue(Target(url, api_key, as_json), request)
