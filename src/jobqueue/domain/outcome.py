"""What one attempt of a job came to."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from jobqueue.domain.jobs import JSONValue


@dataclass(frozen=True, slots=True)
class Succeeded:
    """The handler returned; ``result`` is what it returned, if anything."""

    result: JSONValue = None
    # When and how long are not what the attempt came to: outcomes compare without them.
    started_at: datetime | None = field(default=None, compare=False)
    """When the handler was called; None: the attempt's start (its claim)."""
    duration_ms: float | None = field(default=None, compare=False)
    """How long the handler ran."""


@dataclass(frozen=True, slots=True)
class Failed:
    """The handler raised; ``permanent`` when no retry can help."""

    error: str
    permanent: bool = False
    # When and how long are not what the attempt came to: outcomes compare without them.
    started_at: datetime | None = field(default=None, compare=False)
    """When the handler was called; None: the attempt's start (its claim)."""
    duration_ms: float | None = field(default=None, compare=False)
    """How long the handler ran."""


Outcome = Succeeded | Failed
