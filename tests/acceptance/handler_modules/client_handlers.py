"""Handlers the client and operator CLI tests load into ``jobqueue serve`` (JOBQUEUE_HANDLERS).

Imported by the server process (PYTHONPATH points at this directory), never by pytest.
"""

from __future__ import annotations

from typing import Any

from jobqueue import JobContext, PermanentError, handler


@handler("client-echo")
async def echo(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Return the payload: its result shows the job ran, with what."""
    return payload


@handler("client-fail")
async def fail(payload: dict[str, Any], ctx: JobContext) -> None:
    """Fail for good at once: the job is failed after one attempt, and dead-lettered."""
    raise PermanentError("told to fail")


@handler("client-later")
async def later(payload: dict[str, Any], ctx: JobContext) -> None:
    """For jobs the tests create with a delay and never let run."""


@handler("client-add")
async def add(payload: dict[str, Any], ctx: JobContext) -> dict[str, int]:
    """Add the payload's ``n`` to the totals of the jobs it waited for: the last result of a
    chain or chord shows that every step ran once and passed its result along."""
    totals = [result["total"] for result in ctx.parent_results.values() if result is not None]
    return {"total": payload.get("n", 0) + sum(totals), "parents": len(ctx.parent_results)}
