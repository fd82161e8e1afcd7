"""Recurring jobs: a job type, a cron expression, and the ticks they make (no I/O).

Each tick makes one job whose idempotency key names the tick, so several worker processes
that all keep the schedule still make one job per tick.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from croniter import croniter

from jobqueue.domain.jobs import JSONObject

KEY_PREFIX = "schedule"


class InvalidScheduleError(ValueError):
    """A schedule that cannot be read; the message says which and how to write it."""


@dataclass(frozen=True, slots=True)
class Schedule:
    """Make a ``job_type`` job at every tick of ``cron`` (UTC; 5 fields, or 6 with seconds)."""

    job_type: str
    cron: str
    payload: JSONObject = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not croniter.is_valid(self.cron):
            raise InvalidScheduleError(
                f"schedule of '{self.job_type}': {self.cron!r} is not a cron expression "
                "(five fields: minute hour day month weekday, like '*/5 * * * *')"
            )

    def next_tick(self, after: datetime) -> datetime:
        """The first tick strictly after ``after``."""
        tick: datetime = croniter(self.cron, after.astimezone(UTC)).get_next(datetime)
        return tick

    def ticks_before(self, moment: datetime, count: int) -> list[datetime]:
        """The ``count`` latest ticks at or before ``moment``, latest first."""
        # Back from the first tick after ``moment``: its predecessor is the latest tick at
        # or before ``moment``, whether or not ``moment`` is a tick itself.
        ticks = croniter(self.cron, self.next_tick(moment))
        return [ticks.get_prev(datetime) for _ in range(count)]

    def key(self, tick: datetime) -> str:
        """The idempotency key of the job made at ``tick``."""
        return f"{KEY_PREFIX}:{self.job_type}:{tick.astimezone(UTC).isoformat()}"


def parse_schedules(text: str) -> list[Schedule]:
    """SCHEDULES: ``type=cron`` entries separated by ``;``, e.g.
    ``report=0 3 * * *; cleanup=*/15 * * * *``."""
    schedules = []
    for entry in (part.strip() for part in text.split(";")):
        if not entry:
            continue
        job_type, sep, cron = entry.partition("=")
        if not sep or not job_type.strip() or not cron.strip():
            raise InvalidScheduleError(
                f"SCHEDULES entry {entry!r}: write it as type=cron, like 'report=0 3 * * *'"
            )
        schedules.append(Schedule(job_type.strip(), cron.strip()))
    return schedules


def merged(in_code: Iterable[Schedule], in_settings: Iterable[Schedule]) -> list[Schedule]:
    """The schedules in force: a type named in the settings takes the settings' cron."""
    by_type = {schedule.job_type: schedule for schedule in in_code}
    by_type.update({schedule.job_type: schedule for schedule in in_settings})
    return [by_type[job_type] for job_type in sorted(by_type)]
