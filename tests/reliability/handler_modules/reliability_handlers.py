"""Handlers the reliability tests load into ``jobqueue serve`` through JOBQUEUE_HANDLERS.

Imported by the server process (PYTHONPATH points at this directory), never by pytest.
Each handler appends its attempt number to the file named by ``payload["log"]`` on start.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from jobqueue import JobContext, handler

GATE_POLL_S = 0.02
GATE_LIMIT_S = 60.0
SLOW_SLEEP_S = 3600.0


def note_attempt(payload: dict[str, Any], ctx: JobContext) -> None:
    """Append this attempt's number to the payload's ``log`` file (the test's marker)."""
    with Path(payload["log"]).open("a", encoding="utf-8") as file:
        file.write(f"{ctx.attempt}\n")


@handler("slow")
async def slow(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """First attempt: note it, then hang (until the process is killed); later ones return."""
    note_attempt(payload, ctx)
    if ctx.attempt == 1:
        await asyncio.sleep(SLOW_SLEEP_S)
    return {"attempt": ctx.attempt}


@handler("gated")
async def gated(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Note the attempt, then return once the file ``payload["gate"]`` exists (at most 60 s)."""
    note_attempt(payload, ctx)
    gate = Path(payload["gate"])
    deadline = time.monotonic() + GATE_LIMIT_S
    for _ in range(int(GATE_LIMIT_S / GATE_POLL_S)):
        if await asyncio.to_thread(gate.exists):
            return {"attempt": ctx.attempt}
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(GATE_POLL_S)
    raise TimeoutError(f"gate {gate} never opened")


@handler("poison")
async def poison(payload: dict[str, Any], ctx: JobContext) -> None:
    """Note the attempt, then kill the worker process running it, every time."""
    note_attempt(payload, ctx)
    os._exit(1)


@handler("noted")
async def noted(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Note the attempt and return what the jobs it waited for returned."""
    note_attempt(payload, ctx)
    return {"parents": {str(job_id): result for job_id, result in ctx.parent_results.items()}}
