"""One line that tells an operator what went wrong and what to do about it (no I/O)."""

from __future__ import annotations

from jobqueue.client import (
    ApiError,
    AuthError,
    ConnectError,
    JobQueueError,
    NotFoundError,
    ProtocolError,
)


def explain(error: JobQueueError, url: str, job_id: str | None = None) -> str:
    """The message for ``error`` from the server at ``url`` (about ``job_id``, if any)."""
    if isinstance(error, ConnectError):
        return f"{error.message} — is `jobqueue serve` running?"
    if isinstance(error, AuthError):
        return (
            f"jobqueue at {url} refused the API key ({error.status}: {error.message}): "
            "pass --api-key or set JOBQUEUE_API_KEY to one of the server's API_KEYS"
        )
    if isinstance(error, NotFoundError) and job_id is not None:
        return f"no job {job_id} at {url} (404)"
    if isinstance(error, ProtocolError):
        return f"{url} did not answer like a jobqueue server: {error.message}"
    if isinstance(error, ApiError):
        return f"jobqueue at {url} answered {error.status} {error.error}: {error.message}"
    return error.message
