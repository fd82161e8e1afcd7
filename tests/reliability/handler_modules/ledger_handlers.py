"""A handler that writes each run into a per-process ledger file, to count deliveries."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from jobqueue import JobContext, handler

_ledger: int | None = None


def _ledger_fd() -> int:
    global _ledger  # noqa: PLW0603 - one append-only file per process, opened on first use
    if _ledger is None:
        path = Path(os.environ["LEDGER_DIR"]) / f"{os.getpid()}.ledger"
        _ledger = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    return _ledger


@handler("ledger")
async def ledger(payload: dict[str, Any], ctx: JobContext) -> None:
    """Append ``<job id> <attempt>`` to this process's ledger (one write: atomic in append mode)."""
    os.write(_ledger_fd(), f"{ctx.job_id} {ctx.attempt}\n".encode())


@handler("ledger-slow")
async def ledger_slow(payload: dict[str, Any], ctx: JobContext) -> None:
    """As ``ledger``, then take ``payload["seconds"]`` to finish."""
    os.write(_ledger_fd(), f"{ctx.job_id} {ctx.attempt}\n".encode())
    await asyncio.sleep(float(payload["seconds"]))


@handler("limited", concurrency=2, rate=5)
async def limited(payload: dict[str, Any], ctx: JobContext) -> None:
    """Write ``<job id> start|end <wall time>`` around 200 ms of work; its type runs at most
    2 at once and starts at most 5 a second, over every worker process."""
    os.write(_ledger_fd(), f"{ctx.job_id} start {time.time()}\n".encode())
    await asyncio.sleep(0.2)
    os.write(_ledger_fd(), f"{ctx.job_id} end {time.time()}\n".encode())
