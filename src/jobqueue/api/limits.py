"""Rules every /api request meets: an API key when keys are set, JSON bodies, a size limit."""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobqueue.api.errors import error_response

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


async def require_json(request: Request) -> None:
    """415 unless the body is declared as JSON (dependency of the routes that take one)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise HTTPException(415, "Content-Type must be application/json")


async def require_api_key(request: Request) -> None:
    """401 unless the request carries one of API_KEYS as a Bearer token (when keys are set)."""
    keys: list[str] = request.app.state.settings.api_keys
    if not keys:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not any(
        hmac.compare_digest(token.strip().encode(), key.encode()) for key in keys
    ):
        raise HTTPException(401, "Missing or wrong API key: send 'Authorization: Bearer <key>'")


class BodySizeLimit:
    """413 for bodies above ``limit`` bytes, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await error_response(413, self._message())(scope, receive, send)
            return
        await self.app(scope, self._counting(receive), send)

    def _counting(self, receive: Receive) -> Receive:
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise HTTPException(413, self._message())
            return message

        return counted

    def _message(self) -> str:
        return f"Request body is larger than {self.limit} bytes (MAX_PAYLOAD_BYTES)"
