"""Handlers the dashboard's browser tests load into ``jobqueue serve`` (JOBQUEUE_HANDLERS).

Imported by the server process (PYTHONPATH points at this directory), never by pytest.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from jobqueue import JobContext, handler

GATE_POLL_S = 0.05
GATE_LIMIT_S = 60.0


@handler("ok")
async def ok(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Succeed at once, returning the payload."""
    return {"echo": payload}


@handler("switched")
async def switched(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Fail with ``payload["message"]`` until the file ``payload["switch"]`` exists."""
    if not await asyncio.to_thread(Path(payload["switch"]).exists):
        raise RuntimeError(payload.get("message", "the switch is off"))
    return {"attempt": ctx.attempt}


@handler("gated")
async def gated(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Report 40% progress, then return once the file ``payload["gate"]`` exists (at most 60 s;
    sooner when cancelled)."""
    await ctx.progress(40, "waiting for the gate")
    gate = Path(payload["gate"])
    deadline = time.monotonic() + GATE_LIMIT_S
    while time.monotonic() < deadline and not ctx.cancelled.is_set():
        if await asyncio.to_thread(gate.exists):
            return {"opened": True}
        await asyncio.sleep(GATE_POLL_S)
    raise TimeoutError(f"gate {gate} never opened")
