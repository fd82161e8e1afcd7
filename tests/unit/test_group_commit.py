"""Group commit: batches form only while a flush is in flight, and errors reach every caller."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from jobqueue.store.batching import GroupCommit


class Recorder:
    """A flush that records its batches and can be held open."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.release.set()

    async def flush(self, items: Sequence[int]) -> dict[int, str]:
        self.batches.append(list(items))
        await self.release.wait()
        return {item: f"done {item}" for item in items if item >= 0}


async def test_a_lone_write_is_flushed_at_once() -> None:
    recorder = Recorder()
    commit = GroupCommit(recorder.flush, key=lambda item: item, max_batch=10)
    assert await commit.submit(1) == "done 1"
    assert recorder.batches == [[1]]


async def test_writes_arriving_during_a_flush_share_the_next_one() -> None:
    recorder = Recorder()
    commit = GroupCommit(recorder.flush, key=lambda item: item, max_batch=10)
    recorder.release.clear()
    first = asyncio.create_task(commit.submit(0))
    await asyncio.sleep(0)  # let the first flush start and block
    rest = [asyncio.create_task(commit.submit(n)) for n in (1, 2, 3)]
    await asyncio.sleep(0)
    recorder.release.set()
    assert await asyncio.gather(first, *rest) == ["done 0", "done 1", "done 2", "done 3"]
    assert recorder.batches == [[0], [1, 2, 3]]


async def test_batches_are_capped() -> None:
    recorder = Recorder()
    commit = GroupCommit(recorder.flush, key=lambda item: item, max_batch=2)
    await asyncio.gather(*(commit.submit(n) for n in range(5)))
    assert max(len(batch) for batch in recorder.batches) <= 2
    assert sorted(n for batch in recorder.batches for n in batch) == [0, 1, 2, 3, 4]


async def test_an_item_that_matched_nothing_gets_none() -> None:
    recorder = Recorder()
    commit = GroupCommit(recorder.flush, key=lambda item: item, max_batch=10)
    assert await commit.submit(-1) is None


async def test_a_failed_flush_fails_every_caller_in_it() -> None:
    async def broken(items: Sequence[int]) -> dict[int, str]:
        raise ConnectionError("database went away")

    commit = GroupCommit(broken, key=lambda item: item, max_batch=10)
    results = await asyncio.gather(commit.submit(1), commit.submit(2), return_exceptions=True)
    assert all(isinstance(result, ConnectionError) for result in results)
    with pytest.raises(ConnectionError):
        await commit.submit(3)


async def test_a_caller_that_stops_waiting_does_not_cancel_the_shared_flush() -> None:
    recorder = Recorder()
    commit = GroupCommit(recorder.flush, key=lambda item: item, max_batch=10)
    recorder.release.clear()
    impatient = asyncio.create_task(commit.submit(0))
    await asyncio.sleep(0)
    patient = asyncio.create_task(commit.submit(1))
    await asyncio.sleep(0)
    impatient.cancel()
    recorder.release.set()
    assert await patient == "done 1"
    assert recorder.batches == [[0], [1]]


async def test_a_flush_may_fail_one_item_alone() -> None:
    async def picky(items: Sequence[int]) -> dict[int, str | Exception]:
        return {
            item: ValueError(f"{item} refused") if item == 2 else f"ok {item}" for item in items
        }

    commit = GroupCommit(picky, key=lambda item: item, max_batch=10)
    results = await asyncio.gather(
        commit.submit(1), commit.submit(2), commit.submit(3), return_exceptions=True
    )
    assert results[0] == "ok 1"
    assert isinstance(results[1], ValueError)
    assert results[2] == "ok 3"
