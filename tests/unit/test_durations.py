"""Durations in settings: RETAIN_COMPLETED=7d and its kin."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from jobqueue.config import Settings, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", timedelta(days=7)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        ("90s", timedelta(seconds=90)),
        ("250ms", timedelta(milliseconds=250)),
        ("1.5h", timedelta(minutes=90)),
        ("3600", timedelta(hours=1)),
        (" 0 ", timedelta(0)),
        (45, timedelta(seconds=45)),
    ],
)
def test_a_duration_is_read_with_its_unit(text: object, expected: timedelta) -> None:
    assert parse_duration(text) == expected


def test_retention_defaults_to_a_week_and_refuses_what_is_not_a_duration() -> None:
    assert Settings(_env_file=None).retain_completed == timedelta(days=7)
    assert Settings(_env_file=None, retain_completed="0").retain_completed == timedelta(0)
    with pytest.raises(ValidationError, match="is not a duration: write it like 7d"):
        Settings(_env_file=None, retain_completed="a week")
