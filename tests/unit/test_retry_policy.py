"""The retry rule: exponential backoff and when to give up."""

from __future__ import annotations

from datetime import timedelta

import pytest

from jobqueue.domain.retry import GiveUp, RetryLater, RetryPolicy


def test_default_waits_are_2_4_8_16_seconds() -> None:
    policy = RetryPolicy()
    waits = [policy.delay_after(attempt).total_seconds() for attempt in range(1, 5)]
    assert waits == [2, 4, 8, 16]


def test_backoff_doubles_from_the_configured_first_wait() -> None:
    policy = RetryPolicy(max_attempts=4, backoff_ms=150)
    assert policy.delay_after(1) == timedelta(milliseconds=150)
    assert policy.delay_after(3) == timedelta(milliseconds=600)


def test_failures_before_the_last_attempt_are_retried() -> None:
    policy = RetryPolicy(max_attempts=5, backoff_ms=2000)
    assert policy.decide(4, "boom") == RetryLater(timedelta(seconds=16))


def test_the_last_attempt_gives_up_and_keeps_the_error() -> None:
    decision = RetryPolicy(max_attempts=5).decide(5, "boom")
    assert isinstance(decision, GiveUp)
    assert "boom" in decision.reason
    assert "5/5" in decision.reason


def test_five_attempts_never_wait_32_seconds() -> None:
    policy = RetryPolicy()
    decisions = [policy.decide(attempt, "x") for attempt in range(1, 6)]
    waits = [d.delay.total_seconds() for d in decisions if isinstance(d, RetryLater)]
    assert waits == [2, 4, 8, 16]
    assert isinstance(decisions[-1], GiveUp)


def test_a_permanent_error_gives_up_on_the_first_attempt() -> None:
    assert RetryPolicy().decide(1, "bad input", permanent=True) == GiveUp("bad input")


def test_a_job_may_allow_fewer_attempts_than_the_policy() -> None:
    assert isinstance(RetryPolicy(max_attempts=5).decide(2, "x", max_attempts=2), GiveUp)


@pytest.mark.parametrize(("max_attempts", "backoff_ms"), [(0, 1000), (3, -1)])
def test_nonsense_settings_are_refused(max_attempts: int, backoff_ms: int) -> None:
    with pytest.raises(ValueError, match="must"):
        RetryPolicy(max_attempts, backoff_ms)


def test_attempt_numbers_start_at_one() -> None:
    with pytest.raises(ValueError, match="start at 1"):
        RetryPolicy().delay_after(0)
