"""Every error answer in the Node service's shape ``{statusCode, error, message}``."""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from jobqueue.api.responses import json_response
from jobqueue.domain.errors import (
    DependencyUnavailableError,
    InvalidJobError,
    InvalidTransitionError,
    JobNotFoundError,
    RetryNotAllowedError,
)

log = structlog.get_logger(__name__)

# FastAPI's words for a body that is not UTF-8 or nests too deep, said as the contract asks.
_PLAIN_MESSAGES = {"There was an error parsing the body": "body: invalid JSON"}
_LOCATIONS = {"body": "body", "query": "querystring", "path": "params", "header": "headers"}


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
            parts.append(f"{name}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    """Map domain, validation and dependency errors to HTTP answers without internals."""

    async def on_validation(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return error_response(400, validation_message(exc.errors()))

    async def on_http(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = _PLAIN_MESSAGES.get(str(exc.detail), str(exc.detail))
        return error_response(exc.status_code, message)

    async def on_domain(_request: Request, exc: Exception) -> Response:
        return error_response(_domain_status(exc), str(exc))

    async def on_database(request: Request, exc: Exception) -> Response:
        log.error("database error", path=request.url.path, error=type(exc).__name__)
        return error_response(503, "database is unavailable; try again shortly")

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", path=request.url.path)
        return error_response(500, "Internal Server Error")

    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
    for domain_error in (JobNotFoundError, InvalidJobError, InvalidTransitionError):
        app.add_exception_handler(domain_error, on_domain)
    app.add_exception_handler(DependencyUnavailableError, on_domain)
    for db_error in (DBAPIError, PoolTimeoutError, TimeoutError, OSError):
        app.add_exception_handler(db_error, on_database)
    app.add_exception_handler(Exception, on_unexpected)


def _domain_status(exc: Exception) -> int:
    if isinstance(exc, JobNotFoundError):
        return 404
    if isinstance(exc, RetryNotAllowedError | InvalidJobError):
        return 400
    if isinstance(exc, InvalidTransitionError):
        return 409
    return 503
