"""Handlers the behaviour suite registers (loaded through JOBQUEUE_HANDLERS)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict
from typing import Any
from uuid import UUID

from jobqueue import JobContext, PermanentError, handler

calls: defaultdict[UUID, list[int]] = defaultdict(list)
"""Attempt numbers each job's handler saw, in order."""
started_at: defaultdict[UUID, list[float]] = defaultdict(list)
"""When each attempt of a ``flaky`` job started (monotonic seconds)."""
gates: defaultdict[UUID, asyncio.Event] = defaultdict(asyncio.Event)
"""``blocker`` jobs wait on their gate; tests set it."""
started: defaultdict[UUID, asyncio.Event] = defaultdict(asyncio.Event)
"""Set when a ``blocker`` job starts running."""


@handler("flaky")
async def flaky(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Fail the first ``payload["failures"]`` attempts, then succeed."""
    calls[ctx.job_id].append(ctx.attempt)
    started_at[ctx.job_id].append(time.monotonic())
    if ctx.attempt <= int(payload.get("failures", 0)):
        raise RuntimeError(f"planned failure {ctx.attempt}")
    return {"attempt": ctx.attempt}


@handler("permanent")
async def permanent(payload: dict[str, Any], ctx: JobContext) -> None:
    """Fail for good at once."""
    calls[ctx.job_id].append(ctx.attempt)
    raise PermanentError("this can never work")


@handler("fails-first-run")
async def fails_first_run(payload: dict[str, Any], ctx: JobContext) -> None:
    """Fail for good the first time the job runs; succeed when it is run again (a retry)."""
    calls[ctx.job_id].append(ctx.attempt)
    if len(calls[ctx.job_id]) == 1:
        raise PermanentError("the first run always fails")


@handler("blocker")
async def blocker(payload: dict[str, Any], ctx: JobContext) -> None:
    """Run until the test opens this job's gate."""
    calls[ctx.job_id].append(ctx.attempt)
    started[ctx.job_id].set()
    await gates[ctx.job_id].wait()


@handler("sync-echo")
def sync_echo(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """A plain function: runs in a thread of its own."""
    calls[ctx.job_id].append(ctx.attempt)
    return payload


@handler("hang", timeout_ms=100)
async def hang(payload: dict[str, Any], ctx: JobContext) -> None:
    """Never finish by itself: its 100 ms timeout ends each attempt."""
    calls[ctx.job_id].append(ctx.attempt)
    await asyncio.Event().wait()


@handler("hang-sync", timeout_ms=100)
def hang_sync(payload: dict[str, Any], ctx: JobContext) -> None:
    """A plain function that does not finish in time: its thread is abandoned (and ends by
    itself two seconds later)."""
    calls[ctx.job_id].append(ctx.attempt)
    threading.Event().wait(2)


@handler("blocker-then-fail")
async def blocker_then_fail(payload: dict[str, Any], ctx: JobContext) -> None:
    """Run until the test opens this job's gate, then fail for good."""
    calls[ctx.job_id].append(ctx.attempt)
    started[ctx.job_id].set()
    await gates[ctx.job_id].wait()
    raise PermanentError("gave up after the gate")


@handler("returns")
async def returns(payload: dict[str, Any], ctx: JobContext) -> Any:
    """Return ``payload["value"]``: the job's result."""
    return payload.get("value")


UNSTORABLE: dict[str, Any] = {
    "set": {1, 2},
    "nul": {"s": "a\x00b"},
    "big": "x" * 70_000,
}


@handler("returns-unstorable")
async def returns_unstorable(payload: dict[str, Any], ctx: JobContext) -> Any:
    """Return a value no store keeps: ``UNSTORABLE[payload["kind"]]``."""
    return UNSTORABLE[payload["kind"]]


@handler("flaky-fixed", max_attempts=2, backoff="fixed", backoff_ms=200)
async def flaky_fixed(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """As ``flaky``, with its type's own policy: 2 attempts, 200 ms apart."""
    return await flaky(payload, ctx)


@handler("progressing")
async def progressing(payload: dict[str, Any], ctx: JobContext) -> None:
    """Report progress 1 to 50 at once (coalesced), then wait for the gate like ``blocker``."""
    calls[ctx.job_id].append(ctx.attempt)
    for percent in range(1, 51):
        await ctx.progress(percent, f"step {percent}")
    started[ctx.job_id].set()
    await gates[ctx.job_id].wait()


@handler("progressing-sync")
def progressing_sync(payload: dict[str, Any], ctx: JobContext) -> None:
    """A plain function reporting progress from its own thread."""
    ctx.report_progress(70, "from a thread")
    time.sleep(0.5)


@handler("permanent-then-gated")
async def permanent_then_gated(payload: dict[str, Any], ctx: JobContext) -> None:
    """Fail for good on the first run; later runs (after a retry) wait for the gate."""
    calls[ctx.job_id].append(ctx.attempt)
    if len(calls[ctx.job_id]) == 1:
        raise PermanentError("this can never work")
    started[ctx.job_id].set()
    await gates[ctx.job_id].wait()


heard_cancel: set[UUID] = set()
"""Jobs whose ``cooperative`` handler saw ``ctx.cancelled``."""


@handler("cooperative")
async def cooperative(payload: dict[str, Any], ctx: JobContext) -> None:
    """Run until cancelled (at most 30 s), then stop by itself."""
    calls[ctx.job_id].append(ctx.attempt)
    started[ctx.job_id].set()
    await asyncio.wait_for(ctx.cancelled.wait(), 30)
    heard_cancel.add(ctx.job_id)


runs: list[tuple[float, float]] = []
"""(start, end) of every ``one-at-a-time`` run, in monotonic seconds."""


@handler("one-at-a-time", concurrency=1)
async def one_at_a_time(payload: dict[str, Any], ctx: JobContext) -> None:
    """Take 50 ms; its type runs one job at a time over every process."""
    begun = time.monotonic()
    await asyncio.sleep(0.05)
    runs.append((begun, time.monotonic()))


parents_seen: defaultdict[UUID, list[dict[UUID, Any]]] = defaultdict(list)
"""What ``ctx.parent_results`` held at each run of a ``chain-step`` or ``fan-in`` job."""


@handler("chain-step")
async def chain_step(payload: dict[str, Any], ctx: JobContext) -> dict[str, int]:
    """``payload["start"]`` for the first step; later ones add 1 to their parent's ``n``."""
    parents_seen[ctx.job_id].append(dict(ctx.parent_results))
    if not ctx.parent_results:
        return {"n": int(payload["start"])}
    [previous] = ctx.parent_results.values()
    return {"n": int(previous["n"]) + 1}


@handler("fan-in")
async def fan_in(payload: dict[str, Any], ctx: JobContext) -> dict[str, int]:
    """Count its parents' results and sum those that are numbers."""
    calls[ctx.job_id].append(ctx.attempt)
    parents_seen[ctx.job_id].append(dict(ctx.parent_results))
    numbers = [value for value in ctx.parent_results.values() if isinstance(value, int)]
    return {"parents": len(ctx.parent_results), "sum": sum(numbers)}
