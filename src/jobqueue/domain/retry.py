"""The retry rule: the one place that decides between another attempt and failure."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class RetryLater:
    """Run the job again after ``delay``."""

    delay: timedelta


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Fail the job for good and record it in the dead-letter queue."""

    reason: str


Decision = RetryLater | GiveUp


class Backoff(enum.StrEnum):
    """How the wait between attempts grows (BullMQ's names for the same two rules)."""

    EXPONENTIAL = "exponential"
    """The wait before attempt n+1 is ``backoff_ms * 2**(n-1)``: 2, 4, 8, 16 s by default."""
    FIXED = "fixed"
    """Every wait is ``backoff_ms``."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often a job is tried and how long it waits in between."""

    max_attempts: int = 5
    backoff_ms: int = 2000
    backoff: Backoff = Backoff.EXPONENTIAL

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.backoff_ms < 0:
            raise ValueError("backoff_ms must not be negative")

    def delay_after(self, attempt: int) -> timedelta:
        """How long to wait after failed attempt number ``attempt`` (1-based)."""
        if attempt < 1:
            raise ValueError("attempt numbers start at 1")
        if self.backoff is Backoff.FIXED:
            return timedelta(milliseconds=self.backoff_ms)
        return timedelta(milliseconds=self.backoff_ms * 2 ** (attempt - 1))

    def decide(
        self, attempt: int, error: str, *, permanent: bool = False, max_attempts: int | None = None
    ) -> Decision:
        """What to do after attempt ``attempt`` failed with ``error``.

        ``max_attempts`` overrides the policy's limit for one job.
        """
        limit = self.max_attempts if max_attempts is None else max_attempts
        if permanent:
            return GiveUp(error)
        if attempt >= limit:
            return GiveUp(f"attempts exhausted ({attempt}/{limit}): {error}")
        return RetryLater(self.delay_after(attempt))


@dataclass(frozen=True, slots=True)
class RetryPolicies:
    """The settings' policy, and the job types whose handlers declare their own."""

    default: RetryPolicy = RetryPolicy()
    by_type: Mapping[str, RetryPolicy] = field(default_factory=dict)

    def for_type(self, job_type: str) -> RetryPolicy:
        """The policy that rules jobs of ``job_type`` (a job's own maxAttempts still wins)."""
        return self.by_type.get(job_type, self.default)
