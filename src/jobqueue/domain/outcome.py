"""What one attempt of a job came to."""

from __future__ import annotations

from dataclasses import dataclass

from jobqueue.domain.jobs import JSONObject


@dataclass(frozen=True, slots=True)
class Succeeded:
    """The handler returned; ``result`` is what it returned, if anything."""

    result: JSONObject | None = None


@dataclass(frozen=True, slots=True)
class Failed:
    """The handler raised; ``permanent`` when no retry can help."""

    error: str
    permanent: bool = False


Outcome = Succeeded | Failed
