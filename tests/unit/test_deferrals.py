"""When deliveries held back by their type's limit look for room again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from jobqueue.domain.limits import Deferrals, TypeLimit

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
RETRY = timedelta(milliseconds=500)
LIMITS = {"five-a-second": TypeLimit(rate=5), "two-at-once": TypeLimit(concurrency=2)}


def test_a_rate_spaces_a_backlog_at_that_rate_in_the_order_held_back() -> None:
    deferrals = Deferrals(LIMITS, RETRY)
    dues = [deferrals.due("five-a-second", NOW) for _ in range(4)]
    assert [due - NOW for due in dues] == [
        timedelta(milliseconds=ms) for ms in (500, 700, 900, 1100)
    ]


def test_the_spacing_starts_afresh_once_the_backlog_has_come_back() -> None:
    deferrals = Deferrals(LIMITS, RETRY)
    deferrals.due("five-a-second", NOW)
    later = NOW + timedelta(seconds=10)
    assert deferrals.due("five-a-second", later) == later + RETRY


def test_types_without_a_rate_come_back_after_the_retry_each() -> None:
    deferrals = Deferrals(LIMITS, RETRY)
    assert {deferrals.due("two-at-once", NOW) for _ in range(3)} == {NOW + RETRY}
    assert deferrals.due("unlimited", NOW) == NOW + RETRY


def test_each_type_keeps_its_own_spacing() -> None:
    deferrals = Deferrals({**LIMITS, "ten-a-second": TypeLimit(rate=10)}, RETRY)
    deferrals.due("five-a-second", NOW)
    assert deferrals.due("ten-a-second", NOW) == NOW + RETRY
    assert deferrals.due("ten-a-second", NOW) == NOW + RETRY + timedelta(milliseconds=100)
