"""Progress: checked where a handler reports it, coalesced before it reaches the store."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from uuid import uuid4

import pytest

from jobqueue.config import Settings
from jobqueue.domain.jobs import NewJob, ProgressReport, utcnow
from jobqueue.domain.retry import RetryPolicy
from jobqueue.handlers.registry import JobContext
from jobqueue.service import JobService
from jobqueue.store.memory import InMemoryJobStore
from jobqueue.worker.progress import ProgressWriter
from tests.unit.doubles import RecordingBroker


class CountingStore(InMemoryJobStore):
    """Counts the statements progress costs."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[int] = []

    async def set_progress(self, reports: Sequence[ProgressReport]) -> None:
        self.writes.append(len(reports))
        await super().set_progress(reports)


@pytest.mark.parametrize(
    ("percent", "message"),
    [(-1, None), (101, None), (True, None), (50.5, None), (10, "x" * 1001), (10, "a\x00b")],
)
def test_a_report_out_of_bounds_is_refused(percent: object, message: str | None) -> None:
    ctx = JobContext(uuid4(), "t", 1, 5, Settings(_env_file=None))
    with pytest.raises(ValueError, match="progress"):
        ctx.report_progress(percent, message)  # type: ignore[arg-type]


async def test_many_reports_become_few_writes_and_the_last_one_wins() -> None:
    store = CountingStore()
    service = JobService(store, RecordingBroker(), RetryPolicy(), None)
    for _ in range(2):
        await service.create(NewJob("t"))
    jobs = await store.claim("w1", 2, utcnow() + timedelta(seconds=30))
    writer = ProgressWriter(service, interval_s=0.05)
    for percent in range(101):
        for job in jobs:
            writer.report(ProgressReport(job.id, "w1", percent, f"at {percent}"))
        await asyncio.sleep(0)
    await writer.close()
    assert len(store.writes) <= 3, store.writes  # the first at once, the rest together
    for job in jobs:
        stored = await store.get(job.id)
        assert stored is not None
        assert (stored.progress, stored.progress_message) == (100, "at 100")


async def test_a_report_from_a_worker_that_lost_the_lease_is_dropped() -> None:
    store = InMemoryJobStore()
    service = JobService(store, RecordingBroker(), RetryPolicy(), None)
    await service.create(NewJob("t"))
    [job] = await store.claim("w1", 1, utcnow() + timedelta(seconds=30))
    await service.report_progress([ProgressReport(job.id, "someone-else", 40)])
    assert (await store.get(job.id)).progress is None  # type: ignore[union-attr]
