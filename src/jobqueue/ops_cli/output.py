"""What the operator commands print: rich tables for people, the API's JSON for scripts."""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from pydantic.alias_generators import to_camel
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from jobqueue.client import Attempt, DeadLetter, Job, Stats
from jobqueue.domain.jobs import iso_ms

ID_WIDTH = 36
"""A UUID's length: id columns never wrap or shorten, so they can be copied."""
ERROR_WIDTH = 60
TYPE_WIDTH = 24
PIPED_WIDTH = 160
TIME_WIDTH = len("01-31 23:59:59Z")
WIDE = 120
"""Columns a terminal needs for the tables' time columns."""


def wire(value: Any) -> Any:
    """``value`` as the API writes it: camelCase keys, ISO times, ids and enums as strings."""
    if isinstance(value, Stats):
        return dict(value.counts)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {to_camel(f.name): wire(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [wire(item) for item in value]
    if isinstance(value, datetime):
        return iso_ms(value)
    if isinstance(value, UUID | enum.Enum):
        return str(value.value if isinstance(value, enum.Enum) else value)
    return value


def print_json(value: Any) -> None:
    """One JSON document on stdout."""
    sys.stdout.write(json.dumps(wire(value), ensure_ascii=False) + "\n")


def console() -> Console:
    """Standard output as rich writes it: colours only in a terminal; piped to a file or
    another program, wide enough for a row a line (rich would assume 80 columns)."""
    piped = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(highlight=False, width=PIPED_WIDTH if piped else None)


def show_table(table: Table) -> None:
    """Print ``table`` on stdout."""
    console().print(table)


def jobs_table(jobs: Sequence[Job], wide: bool = True) -> Table:
    """One row per job; the times only when ``wide`` (so that a narrow terminal keeps the
    columns that tell jobs apart rather than squeezing every one)."""
    table = Table(title=f"{len(jobs)} jobs" if jobs else "no jobs", box=box.SIMPLE_HEAD)
    table.add_column("id", no_wrap=True, min_width=ID_WIDTH)
    table.add_column("type", no_wrap=True, min_width=8, max_width=TYPE_WIDTH)
    table.add_column("status", no_wrap=True, min_width=len("processing"))
    table.add_column("tries", no_wrap=True, min_width=len("tries"))
    if wide:
        table.add_column("next run", no_wrap=True, min_width=TIME_WIDTH)
        table.add_column("created", no_wrap=True, min_width=TIME_WIDTH)
    table.add_column("last error", no_wrap=True, min_width=10, max_width=ERROR_WIDTH)
    for job in jobs:
        tries = Text(f"{job.attempts}/{job.max_attempts or '?'}")
        times = [Text(when(job.next_run_at)), Text(when(job.created_at))] if wide else []
        error = Text(job.last_error or "")
        table.add_row(
            Text(str(job.id)), Text(job.type), styled_status(job.status), tries, *times, error
        )
    return table


def job_table(job: Job) -> Table:
    """One job, a field a row."""
    table = Table(show_header=False, title=f"job {job.id}")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in wire(job).items():
        shown = styled_status(job.status) if name == "status" else Text(_text(value))
        table.add_row(Text(name), shown)
    return table


def attempts_table(attempts: Sequence[Attempt]) -> Table:
    """A job's finished attempts, first to last."""
    table = Table(title="attempts" if attempts else "no finished attempts")
    for name in ("#", "outcome", "started", "ms", "worker"):
        table.add_column(name)
    table.add_column("error", overflow="fold")
    for attempt in attempts:
        duration = "" if attempt.duration_ms is None else f"{attempt.duration_ms:.1f}"
        cells = (str(attempt.number), str(attempt.outcome), when(attempt.started_at), duration)
        table.add_row(*map(Text, (*cells, attempt.worker or "", attempt.error or "")))
    return table


def dead_letters_table(entries: Sequence[DeadLetter], wide: bool = True) -> Table:
    """One row per dead-letter entry; the time only when ``wide``."""
    title = f"{len(entries)} dead letters" if entries else "no dead letters"
    table = Table(title=title, box=box.SIMPLE_HEAD)
    table.add_column("job id", no_wrap=True, min_width=ID_WIDTH)
    table.add_column("type", no_wrap=True, min_width=8, max_width=TYPE_WIDTH)
    table.add_column("tries", no_wrap=True, min_width=len("tries"))
    if wide:
        table.add_column("failed", no_wrap=True, min_width=TIME_WIDTH)
    table.add_column("reason", no_wrap=True, min_width=10, max_width=ERROR_WIDTH)
    for entry in entries:
        cells = [str(entry.job_id), entry.type, str(entry.attempts)]
        cells += [when(entry.failed_at)] if wide else []
        table.add_row(*map(Text, (*cells, entry.reason)))
    return table


def stats_table(stats: Stats) -> Table:
    """The count of jobs in each status."""
    table = Table(title=f"{stats.total} jobs")
    table.add_column("status")
    table.add_column("jobs", justify="right")
    for status, count in stats.counts.items():
        table.add_row(styled_status(status), Text(str(count)))
    return table


_STATUS_STYLES = {
    "pending": "yellow",
    "processing": "cyan",
    "completed": "green",
    "failed": "bold red",
    "cancelled": "dim",
    "waiting": "blue",
}


def styled_status(status: str) -> Text:
    """The status in its colour."""
    return Text(str(status), style=_STATUS_STYLES.get(str(status), ""))


def when(moment: datetime | None) -> str:
    """A time to the second, in UTC (``Z``), without the year; empty for none."""
    return "" if moment is None else moment.astimezone(UTC).strftime("%m-%d %H:%M:%SZ")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
