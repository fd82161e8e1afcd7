"""The retry rule: the one place that decides between another attempt and failure."""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff: the wait before attempt n+1 is ``backoff_ms * 2**(n-1)``."""

    max_attempts: int = 5
    backoff_ms: int = 2000

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.backoff_ms < 0:
            raise ValueError("backoff_ms must not be negative")

    def delay_after(self, attempt: int) -> timedelta:
        """How long to wait after failed attempt number ``attempt`` (1-based)."""
        if attempt < 1:
            raise ValueError("attempt numbers start at 1")
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
