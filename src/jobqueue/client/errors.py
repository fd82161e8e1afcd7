"""The client's one exception hierarchy: every failure of a call is a ``JobQueueError``.

::

    JobQueueError                 anything a call can fail with; .status, .message
    ├── ConnectError              no HTTP answer: refused, reset, timed out (.url)
    ├── ProtocolError             an answer that is not the jobqueue API's (wrong URL?)
    └── ApiError                  the server answered an error: {statusCode, error, message}
        ├── BadRequestError       400, 413, 415, 422: the request was refused as invalid
        ├── AuthError             401, 403: missing or wrong API key
        ├── NotFoundError         404: no such job
        ├── ConflictError         409: the job's state forbids it, or an idempotency key
        │                         already made a job of another request
        ├── UnavailableError      502, 503, 504: a dependency is down (retried first)
        └── ServerError           500 and any other 5xx
"""

from __future__ import annotations


class JobQueueError(Exception):
    """Base of every error the client raises."""

    def __init__(self, message: str, status: int | None = None) -> None:
        """``message`` is for people; ``status`` is the HTTP status, None without an answer."""
        super().__init__(message)
        self.message = message
        self.status = status


class ConnectError(JobQueueError):
    """The server gave no HTTP answer (refused, reset, timed out), after the retries."""

    def __init__(self, message: str, url: str) -> None:
        """``url`` is the base URL the client was talking to."""
        super().__init__(message)
        self.url = url


class ProtocolError(JobQueueError):
    """The answer is not what the jobqueue API sends: not JSON, or a field missing."""


class ApiError(JobQueueError):
    """The server answered an error in its ``{statusCode, error, message}`` shape."""

    status: int

    def __init__(self, message: str, status: int, error: str = "") -> None:
        """``error`` is the status's phrase as the server wrote it (``Not Found``)."""
        super().__init__(message, status)
        self.error = error

    def __str__(self) -> str:
        return f"{self.status} {self.error}: {self.message}" if self.error else self.message


class BadRequestError(ApiError):
    """400 (and 413, 415, 422): invalid input; the message names the field."""


class AuthError(ApiError):
    """401 or 403: the API key is missing or wrong (the server has API_KEYS set)."""


class NotFoundError(ApiError):
    """404: no job with that id."""


class ConflictError(ApiError):
    """409: the job's current state forbids the change, or the idempotency key was used
    for another request."""


class UnavailableError(ApiError):
    """502, 503 or 504: the server or one of its dependencies is down for now."""


class ServerError(ApiError):
    """500 or another 5xx: a bug on the server's side."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequestError,
    401: AuthError,
    403: AuthError,
    404: NotFoundError,
    409: ConflictError,
    413: BadRequestError,
    415: BadRequestError,
    422: BadRequestError,
    502: UnavailableError,
    503: UnavailableError,
    504: UnavailableError,
}


def error_class(status: int) -> type[ApiError]:
    """The exception class for an error answer with ``status``."""
    found = _BY_STATUS.get(status)
    if found is not None:
        return found
    return ServerError if status >= 500 else ApiError
