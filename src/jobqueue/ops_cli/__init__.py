"""The operator CLI: ``jobqueue jobs|dlq|enqueue`` over a running server's HTTP API."""

from __future__ import annotations

import typer

from jobqueue.ops_cli.commands import dlq_app, enqueue, jobs_app


def register(app: typer.Typer) -> None:
    """Add the operator commands to the ``jobqueue`` command."""
    app.add_typer(jobs_app, name="jobs")
    app.add_typer(dlq_app, name="dlq")
    app.command("enqueue")(enqueue)
