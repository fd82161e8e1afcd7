"""The retry rule: exponential or fixed backoff, when to give up, and each type's own."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from jobqueue.domain.retry import Backoff, GiveUp, RetryLater, RetryPolicies, RetryPolicy
from jobqueue.handlers.registry import HandlerRegistry, handler


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


def test_fixed_backoff_waits_the_same_every_time() -> None:
    policy = RetryPolicy(max_attempts=4, backoff_ms=300, backoff=Backoff.FIXED)
    assert [policy.delay_after(n) for n in (1, 2, 3)] == [timedelta(milliseconds=300)] * 3


def test_a_type_with_its_own_policy_gets_it_and_every_other_type_the_default() -> None:
    default = RetryPolicy(5, 2000)
    own = RetryPolicy(2, 100, Backoff.FIXED)
    policies = RetryPolicies(default, {"charge-card": own})
    assert policies.for_type("charge-card") is own
    assert policies.for_type("send-email") is default


def test_a_handlers_options_override_only_what_they_name() -> None:
    registry = HandlerRegistry()
    handler("fixed", backoff="fixed", into=registry)(lambda payload, ctx: None)
    handler("few", max_attempts=2, backoff_ms=0, into=registry)(lambda payload, ctx: None)
    handler("plain", timeout_ms=50, into=registry)(lambda payload, ctx: None)
    policies = registry.retry_policies(RetryPolicy(5, 2000))
    assert policies.for_type("fixed") == RetryPolicy(5, 2000, Backoff.FIXED)
    assert policies.for_type("few") == RetryPolicy(2, 0, Backoff.EXPONENTIAL)
    assert "plain" not in policies.by_type


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_attempts": 0}, "max_attempts must be 1 to 100, got 0"),
        ({"backoff_ms": -5}, "backoff_ms must not be negative, got -5"),
        ({"backoff": "linear"}, "'linear' is not a valid Backoff"),
    ],
)
def test_a_handler_option_out_of_range_is_refused_naming_its_type(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=rf"@handler\('x'\): {re.escape(message)}"):
        handler("x", into=HandlerRegistry(), **options)
