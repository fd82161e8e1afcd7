"""Recurring jobs: ticks, keys, the SCHEDULES setting, and a scheduler that makes one job per
tick however many processes keep the schedule."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from jobqueue.config import Settings
from jobqueue.domain.jobs import JobFilter, NewJob, utcnow
from jobqueue.domain.retry import RetryPolicy
from jobqueue.domain.schedules import InvalidScheduleError, Schedule, merged, parse_schedules
from jobqueue.service import JobService
from jobqueue.store.memory import InMemoryJobStore
from jobqueue.worker.scheduler import Scheduler
from tests.unit.doubles import RecordingBroker

AT = datetime(2026, 11, 29, 8, 14, 30, tzinfo=UTC)
EVERY_SECOND = "* * * * * *"


def test_ticks_around_a_moment() -> None:
    schedule = Schedule("report", "*/5 * * * *")
    assert schedule.next_tick(AT) == AT.replace(minute=15, second=0)
    assert schedule.ticks_before(AT, 2) == [
        AT.replace(minute=10, second=0),
        AT.replace(minute=5, second=0),
    ]
    on_a_tick = AT.replace(minute=15, second=0)
    assert schedule.ticks_before(on_a_tick, 1) == [on_a_tick]
    assert schedule.next_tick(on_a_tick) == on_a_tick + timedelta(minutes=5)
    assert schedule.key(on_a_tick) == "schedule:report:2026-11-29T08:15:00+00:00"


def test_the_schedules_setting_is_read_and_a_bad_entry_refused_with_an_example() -> None:
    assert parse_schedules(" report=0 3 * * *; cleanup=*/15 * * * * ;") == [
        Schedule("report", "0 3 * * *"),
        Schedule("cleanup", "*/15 * * * *"),
    ]
    with pytest.raises(InvalidScheduleError, match="write it as type=cron"):
        parse_schedules("report 0 3 * * *")
    with pytest.raises(InvalidScheduleError, match="'every day' is not a cron expression"):
        parse_schedules("report=every day")
    with pytest.raises(ValidationError, match="not a cron expression"):
        Settings(_env_file=None, schedules="report=61 * * * *")


def test_a_schedule_in_the_settings_wins_over_the_handlers() -> None:
    in_code = [Schedule("a", "0 * * * *"), Schedule("b", "0 3 * * *")]
    assert merged(in_code, [Schedule("b", "0 4 * * *")]) == [in_code[0], Schedule("b", "0 4 * * *")]


def service_with(store: InMemoryJobStore, *schedules: Schedule) -> JobService:
    return JobService(store, RecordingBroker(), RetryPolicy(), None, schedules)


async def test_two_processes_keeping_one_schedule_make_one_job_per_tick() -> None:
    store = InMemoryJobStore()
    service = service_with(store, Schedule("tick", EVERY_SECOND))
    keepers = [asyncio.create_task(Scheduler(service, service.schedules).run()) for _ in range(2)]
    try:
        for _ in range(1000):  # two ticks of a second, with a bound of 10 s
            if len(await store.list_jobs(JobFilter())) >= 2:
                break
            await asyncio.sleep(0.01)
    finally:
        for keeper in keepers:
            keeper.cancel()
        await asyncio.gather(*keepers, return_exceptions=True)
    jobs = await store.list_jobs(JobFilter())
    assert len(jobs) >= 2
    keys = Counter(job.idempotency_key for job in jobs)
    assert max(keys.values()) == 1, keys


async def test_after_downtime_the_latest_missed_tick_is_made_once() -> None:
    store = InMemoryJobStore()
    schedule = Schedule("report", "*/5 * * * *")
    service = service_with(store, schedule)
    latest, before = schedule.ticks_before(utcnow(), 2)
    await service.create(NewJob("report", idempotency_key=schedule.key(before)))  # was kept

    await Scheduler(service, [schedule]).catch_up()
    await Scheduler(service, [schedule]).catch_up()  # a second process, or a restart
    keys = sorted(job.idempotency_key or "" for job in await store.list_jobs(JobFilter()))
    assert keys == sorted([schedule.key(before), schedule.key(latest)])


async def test_a_new_schedule_does_not_make_a_job_for_a_tick_already_past() -> None:
    store = InMemoryJobStore()
    schedule = Schedule("report", "*/5 * * * *")
    await Scheduler(service_with(store, schedule), [schedule]).catch_up()
    assert await store.list_jobs(JobFilter()) == []
