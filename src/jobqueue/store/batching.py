"""Group commit: writes that arrive while one is in flight share the next transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
R = TypeVar("R")

Flush = Callable[[Sequence[T]], Awaitable[Mapping[K, R | Exception]]]
"""Writes a batch; answers each item's result by key, or the exception that item alone gets."""


class GroupCommit(Generic[T, K, R]):
    """Batch calls to ``flush`` without adding latency when the system is idle.

    A flusher task writes the first item at once; items that arrive meanwhile go together in
    the following flush. Under load this turns N small transactions into a few large ones.
    The flush belongs to no caller: one that stops waiting (its request was cancelled) does
    not cancel a transaction others are part of.
    """

    def __init__(self, flush: Flush[T, K, R], key: Callable[[T], K], max_batch: int) -> None:
        self._flush = flush
        self._key = key
        self._max_batch = max_batch
        self._waiting: list[tuple[T, asyncio.Future[R | None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R | None:
        """Write ``item`` in the next flush; returns its result, None when it matched no row."""
        future: asyncio.Future[R | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_while_waiting())
        return await future

    async def drain(self) -> None:
        """Wait until every item submitted so far is written (or failed)."""
        if self._flusher is not None:
            await asyncio.wait({self._flusher})

    async def _flush_while_waiting(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[: self._max_batch]
                self._waiting = self._waiting[self._max_batch :]
                await self._flush_batch(batch)
        finally:
            self._flusher = None

    async def _flush_batch(self, batch: list[tuple[T, asyncio.Future[R | None]]]) -> None:
        try:
            results = await self._flush([item for item, _future in batch])
        except asyncio.CancelledError:
            # The loop is shutting down: nobody may wait for a flush that will never finish.
            for _item, future in [*batch, *self._waiting]:
                future.cancel()
            self._waiting = []
            raise
        except Exception as exc:
            for _item, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for item, future in batch:
            if future.done():
                continue
            result = results.get(self._key(item))
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)
