"""What each operator command does, through ``jobqueue.client``; errors become one line."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NoReturn

import typer

from jobqueue.client import AUTO, Client, Job, JobQueueError, JobStatus
from jobqueue.ops_cli import output
from jobqueue.ops_cli.explain import explain
from jobqueue.ops_cli.options import Target

FAILED = 1
"""Exit status when the server could not be reached or refused the request."""
USAGE = 2
"""Exit status for a command line that cannot be sent (click's status for usage errors)."""


@contextmanager
def session(target: Target, job_id: str | None = None) -> Iterator[Client]:
    """A client for ``target``; a ``JobQueueError`` is printed as one line and exits 1, a
    bad URL or setting exits 2."""
    try:
        client = Client(target.url, api_key=target.api_key)
    except ValueError as exc:
        fail(str(exc), USAGE)
    try:
        with client:
            yield client
    except JobQueueError as exc:
        fail(explain(exc, client.url, job_id), FAILED)


def fail(message: str, code: int) -> NoReturn:
    """Print ``message`` on stderr as one line and exit with ``code``."""
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    raise typer.Exit(code)


def list_jobs(
    target: Target, status: JobStatus | None, job_type: str | None, limit: int, offset: int
) -> None:
    """``jobqueue jobs list``."""
    with session(target) as client:
        jobs = client.list_jobs(status, job_type, limit, offset)
    if target.as_json:
        output.print_json(jobs)
    else:
        console = output.console()
        console.print(output.jobs_table(jobs, wide=console.width >= output.WIDE))


def show_job(target: Target, job_id: str) -> None:
    """``jobqueue jobs show``: the job (and, in a terminal, its attempts)."""
    with session(target, job_id) as client:
        job = client.get(job_id)
        attempts = client.attempts(job_id)
    if target.as_json:
        output.print_json(job)
        return
    console = output.console()
    console.print(output.job_table(job))
    console.print(output.attempts_table(attempts))


def retry_job(target: Target, job_id: str) -> None:
    """``jobqueue jobs retry`` and ``jobqueue dlq retry``."""
    with session(target, job_id) as client:
        job = client.retry(job_id)
    report(target, job, "sent back to pending")


def cancel_job(target: Target, job_id: str) -> None:
    """``jobqueue jobs cancel``."""
    with session(target, job_id) as client:
        job = client.cancel(job_id)
    report(target, job, "cancelled")


def delete_job(target: Target, job_id: str) -> None:
    """``jobqueue jobs delete``."""
    with session(target, job_id) as client:
        client.delete(job_id)
    if target.as_json:
        output.print_json({"deleted": job_id})
    else:
        typer.echo(f"job {job_id} deleted")


def stats(target: Target) -> None:
    """``jobqueue jobs stats``."""
    with session(target) as client:
        counts = client.stats()
    if target.as_json:
        output.print_json(counts)
    else:
        output.show_table(output.stats_table(counts))


def retry_failed(target: Target, job_type: str | None, yes: bool) -> None:
    """``jobqueue jobs retry-failed``: asks first in a terminal, needs --yes elsewhere."""
    which = "every failed job" + (f" of type {job_type!r}" if job_type else "")
    with session(target) as client:
        if not yes:
            confirm(f"Send {which} ({client.stats().failed} failed in all) back to pending?")
        retried = client.retry_failed(job_type)
    if target.as_json:
        output.print_json({"retried": retried})
    else:
        typer.echo(f"{retried} failed jobs sent back to pending")


def confirm(question: str) -> None:
    """Ask ``question``; exit unless answered yes. Without a terminal, refuse: say --yes."""
    if not sys.stdin.isatty():
        fail("retry-failed changes many jobs: pass --yes to confirm (no terminal to ask)", USAGE)
    if not typer.confirm(question):
        fail("nothing retried", FAILED)


def list_dead_letters(target: Target, limit: int, offset: int) -> None:
    """``jobqueue dlq list``."""
    with session(target) as client:
        entries = client.dead_letters(limit, offset)
    if target.as_json:
        output.print_json(entries)
    else:
        console = output.console()
        console.print(output.dead_letters_table(entries, wide=console.width >= output.WIDE))


@dataclass(frozen=True, slots=True)
class EnqueueRequest:
    """``jobqueue enqueue``'s arguments, as typed."""

    job_type: str
    payload: str
    max_attempts: int | None
    delay_ms: int | None
    priority: int | None
    idempotency_key: str | None


def enqueue(target: Target, request: EnqueueRequest) -> None:
    """``jobqueue enqueue``: a bad --payload is refused before anything is sent."""
    payload = parse_payload(request.payload)
    delay = None if request.delay_ms is None else timedelta(milliseconds=request.delay_ms)
    with session(target) as client:
        job = client.create(
            request.job_type,
            payload,
            delay=delay,
            priority=request.priority,
            max_attempts=request.max_attempts,
            idempotency_key=request.idempotency_key or AUTO,
        )
    report(target, job, "enqueued")


def parse_payload(text: str) -> dict[str, Any]:
    """The --payload option as a JSON object, or a one-line error and exit 2."""
    try:
        payload = json.loads(text)
    except ValueError as exc:
        fail(f"--payload is not valid JSON: {exc}", USAGE)
    if not isinstance(payload, dict):
        fail(f'--payload must be a JSON object, like {{"to": "a@example.com"}}, not {text}', USAGE)
    return payload


def report(target: Target, job: Job, what: str) -> None:
    """One line about the job acted on, or the job as JSON."""
    if target.as_json:
        output.print_json(job)
    else:
        typer.echo(f"job {job.id} ({job.type}) {what}: {job.status}")
