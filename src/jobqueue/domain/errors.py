"""Errors of the domain and the service; the API maps each to an HTTP status."""

from __future__ import annotations

from uuid import UUID


class JobQueueError(Exception):
    """Base of every error this service raises on purpose."""


class JobNotFoundError(JobQueueError):
    """No job has this id."""

    def __init__(self, job_id: UUID) -> None:
        super().__init__("Job not found")
        self.job_id = job_id


class FlowNotFoundError(JobQueueError):
    """No flow has this id (HTTP 404)."""

    def __init__(self, flow_id: UUID) -> None:
        super().__init__("Flow not found")
        self.flow_id = flow_id


class InvalidTransitionError(JobQueueError):
    """The job's current state forbids the requested change (HTTP 409)."""


class RetryNotAllowedError(InvalidTransitionError):
    """Only failed jobs can be retried; answered 400 as the Node service did."""


class IdempotencyConflictError(JobQueueError):
    """An idempotency key already made a job from a different request (HTTP 409)."""

    def __init__(self, key: str, job_id: UUID) -> None:
        super().__init__(
            f"Idempotency key '{key}' was already used for a different request (job {job_id}); "
            "send the same request again, or use a new key"
        )
        self.key = key
        self.job_id = job_id


class InvalidJobError(JobQueueError):
    """The request is well-formed but names something invalid (HTTP 400)."""


class UnknownJobTypeError(InvalidJobError):
    """No handler is registered for the job's type."""

    def __init__(self, job_type: str, known: list[str]) -> None:
        super().__init__(
            f"Unknown job type '{job_type}'. Known types: {', '.join(sorted(known)) or 'none'}"
        )
        self.job_type = job_type
        self.known = known


class DependencyUnavailableError(JobQueueError):
    """A dependency (database, Redis) did not answer in time (HTTP 503)."""

    def __init__(self, dependency: str, detail: str = "") -> None:
        message = f"{dependency} is unavailable" + (f": {detail}" if detail else "")
        super().__init__(message)
        self.dependency = dependency
