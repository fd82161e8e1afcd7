"""Every error answer in the Node service's shape ``{statusCode, error, message}``.

Which status an error gets is decided in one place, ``ERROR_ANSWERS``: a table keyed by
error type, read along the exception's MRO so that the most specific entry wins whatever
the table's order. Anything the table does not know is a bug: 500, logged with its traceback.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from jobqueue.api.responses import json_response
from jobqueue.domain.errors import (
    DependencyUnavailableError,
    FlowNotFoundError,
    IdempotencyConflictError,
    InvalidJobError,
    InvalidTransitionError,
    JobNotFoundError,
    RetryNotAllowedError,
)
from jobqueue.log_throttle import LogThrottle
from jobqueue.store.base import StoreUnavailableError, UnstorableValueError

log = structlog.get_logger(__name__)

DATABASE_DOWN = "database is unavailable; try again shortly"

_outages = LogThrottle()
"""In an outage every request fails the same way: one line per kind of failure and interval."""


@dataclass(frozen=True, slots=True)
class ErrorAnswer:
    """How the API answers one type of error."""

    status: int
    message: str | None = None
    """The body's message; None: the exception's own words, which are written for clients."""


ERROR_ANSWERS: Mapping[type[Exception], ErrorAnswer] = {
    JobNotFoundError: ErrorAnswer(404),
    FlowNotFoundError: ErrorAnswer(404),
    InvalidJobError: ErrorAnswer(400),
    InvalidTransitionError: ErrorAnswer(409),
    IdempotencyConflictError: ErrorAnswer(409),
    # The Node service answered 400 to a retry of a job that has not failed: kept.
    RetryNotAllowedError: ErrorAnswer(400),
    UnstorableValueError: ErrorAnswer(400),
    DependencyUnavailableError: ErrorAnswer(503),
    # A driver's words can name hosts and internals: the client gets a plain sentence.
    StoreUnavailableError: ErrorAnswer(503, DATABASE_DOWN),
    TimeoutError: ErrorAnswer(503, DATABASE_DOWN),
    OSError: ErrorAnswer(503, DATABASE_DOWN),
}
UNEXPECTED = ErrorAnswer(500, HTTPStatus.INTERNAL_SERVER_ERROR.phrase)

# FastAPI's words for a body that is not UTF-8 or nests too deep, said as the contract asks.
_PLAIN_MESSAGES = {"There was an error parsing the body": "body: invalid JSON"}
_LOCATIONS = {"body": "body", "query": "querystring", "path": "params", "header": "headers"}


def answer_for(exc: BaseException) -> ErrorAnswer:
    """The table's answer for the most specific type ``exc`` is an instance of; else 500."""
    for cls in type(exc).__mro__:
        answer = ERROR_ANSWERS.get(cls)
        if answer is not None:
            return answer
    return UNEXPECTED


def error_response(status: int, message: str) -> Response:
    """The error body with the status's reason phrase."""
    body = {"statusCode": status, "error": HTTPStatus(status).phrase, "message": message}
    return json_response(body, status)


def validation_message(errors: Sequence[Any]) -> str:
    """One line naming each invalid field, e.g. ``querystring/limit: ...``."""
    parts = []
    for error in errors:
        where, *path = error.get("loc", ()) or ("body",)
        name = "/".join([_LOCATIONS.get(str(where), str(where)), *map(str, path)])
        if error.get("type") == "json_invalid":
            parts.append("body: invalid JSON")
        else:
            # Our own validators' words, without pydantic's "Value error, " in front.
            message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
            parts.append(f"{name}: {message}")
    return "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    """Answer validation errors, HTTP errors and every type in ``ERROR_ANSWERS``."""
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(HTTPException, _on_http)
    for error_type in ERROR_ANSWERS:
        app.add_exception_handler(error_type, _on_known)
    # Starlette runs the handler for Exception outermost, after every other handler declined.
    app.add_exception_handler(Exception, _on_unexpected)


async def _on_validation(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return error_response(400, validation_message(exc.errors()))


async def _on_http(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = _PLAIN_MESSAGES.get(str(exc.detail), str(exc.detail))
    return error_response(exc.status_code, message)


async def _on_known(request: Request, exc: Exception) -> Response:
    answer = answer_for(exc)
    if answer.status >= 500:
        error, detail = type(exc).__name__, str(exc)
        where = request.url.path
        _outages.log(
            (error, detail),
            log.error,
            "dependency unavailable",
            path=where,
            error=error,
            detail=detail,
        )
    return _respond(answer, exc)


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", path=request.url.path, exc_info=exc)
    return _respond(UNEXPECTED, exc)


def _respond(answer: ErrorAnswer, exc: Exception) -> Response:
    return error_response(answer.status, answer.message or str(exc))
