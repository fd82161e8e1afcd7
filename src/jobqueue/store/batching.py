"""Group commit: writes that arrive while one is in flight share the next transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
R = TypeVar("R")

Flush = Callable[[Sequence[T]], Awaitable[dict[K, R]]]


class GroupCommit(Generic[T, K, R]):
    """Batch calls to ``flush`` without adding latency when the system is idle.

    The first caller flushes at once; callers that arrive meanwhile wait and go together in
    the following flush. Under load this turns N small transactions into a few large ones.
    """

    def __init__(self, flush: Flush[T, K, R], key: Callable[[T], K], max_batch: int) -> None:
        self._flush = flush
        self._key = key
        self._max_batch = max_batch
        self._waiting: list[tuple[T, asyncio.Future[R | None]]] = []
        self._lock = asyncio.Lock()

    async def submit(self, item: T) -> R | None:
        """Write ``item`` in the next flush; returns its result, None when it matched no row."""
        future: asyncio.Future[R | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        async with self._lock:
            if not future.done():
                await self._flush_waiting()
        return await future

    async def _flush_waiting(self) -> None:
        batch, self._waiting = self._waiting[: self._max_batch], self._waiting[self._max_batch :]
        try:
            results = await self._flush([item for item, _future in batch])
        except asyncio.CancelledError:
            for _item, future in batch:
                future.cancel()  # nobody may wait for a flush that will never finish
            raise
        except Exception as exc:
            # Every caller in the batch, the flushing one included, gets the error.
            for _item, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for item, future in batch:
            if not future.done():
                future.set_result(results.get(self._key(item)))
