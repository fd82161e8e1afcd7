"""Request bodies: declared as JSON (415 otherwise), parsed once, by orjson, as strict JSON.

FastAPI parses a JSON body with the standard library, which accepts ``NaN`` and
``Infinity``; JSON (and the Node service) do not. orjson refuses them while parsing, so
no second pass over the payload is needed to find them.

orjson reads an integer beyond 64 bits as a float, which would change the number stored:
such a body is refused with 400 naming the field, found by a second, exact parse that runs
only when the body holds a run of 19 digits.

JSON may carry the character U+0000 (as ``\u0000``), which PostgreSQL can store in neither
``text`` nor ``jsonb``. Every mode refuses it with 400 naming the field, so that one body means
the same in all three; the body is walked only when its bytes contain that escape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute

from jobqueue.domain.json_values import (
    BIG_INTEGER,
    NON_FINITE,
    NUL_CHARACTER,
    first_path,
    holds_nul,
    is_beyond_64_bits,
    is_non_finite,
)

_LONG_DIGITS = re.compile(rb"\d{19}")
"""A run of digits long enough to be an integer orjson would read as a float."""

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class StrictJsonRequest(Request):
    """A request whose ``json()`` is orjson's strict parse."""

    async def json(self) -> Any:
        """The body as JSON; refuses what JSON does not allow."""
        if not hasattr(self, "_json"):
            self._json = parse_json(await self.body())
        return self._json


class StrictJsonRoute(APIRoute):
    """A route whose body must be declared as JSON, and is read by ``StrictJsonRequest``."""

    def get_route_handler(self) -> Handler:
        """FastAPI's handler, behind the JSON rules when the route takes a body."""
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler
        optional = not self.body_field.field_info.is_required()

        async def strict_json_handler(request: Request) -> Response:
            if not (optional and not _has_body(request)):
                require_json(request)
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict_json_handler


def require_json(request: Request) -> None:
    """415 unless the body is declared as JSON."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise HTTPException(415, "Content-Type must be application/json")


def _has_body(request: Request) -> bool:
    """The request announces a body (a route whose body is optional takes none without a
    Content-Type)."""
    length = request.headers.get("content-length")
    return "transfer-encoding" in request.headers or (length is not None and length != "0")


def parse_json(body: bytes) -> Any:
    """``body`` parsed; 400 naming the field that holds NaN, Infinity or U+0000.

    Other errors are orjson's ``JSONDecodeError``, which FastAPI answers as invalid JSON.
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        path = _non_finite_path(body)
        if path is None:
            raise
        raise HTTPException(400, _field(path) + f": {NON_FINITE}") from error
    if b"\\u0000" in body:
        path = first_path(document, holds_nul)
        if path is not None:
            raise HTTPException(400, _field(path) + f": {NUL_CHARACTER}")
    if _LONG_DIGITS.search(body):
        path = first_path(json.loads(body), is_beyond_64_bits)
        if path is not None:
            raise HTTPException(400, _field(path) + f": {BIG_INTEGER}")
    return document


def _field(path: list[str | int]) -> str:
    return "/".join(["body", *(str(step).replace("\x00", "\\u0000") for step in path)])


def _non_finite_path(body: bytes) -> list[str | int] | None:
    """Where the standard library's lenient parse finds NaN or Infinity, if it parses at all."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    return first_path(document, is_non_finite)
