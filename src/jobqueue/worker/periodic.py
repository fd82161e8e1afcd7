"""A worker's chores that come round at a fixed interval."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def every(interval_s: float, action: Callable[[], Awaitable[object]]) -> None:
    """``action()`` once per ``interval_s``, until cancelled (it handles its own errors)."""
    while True:
        await asyncio.sleep(interval_s)
        await action()
