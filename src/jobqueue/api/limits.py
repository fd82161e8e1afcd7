"""Rules met before a request reaches its route: an API key when keys are set, a size limit.

Both are plain ASGI middleware: a request they let through costs a few dictionary
lookups, and the key check is installed only when API_KEYS is set.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobqueue.api.errors import error_response

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
METRICS_PATH = "/metrics"
_NO_KEY = "Missing or wrong API key: send 'Authorization: Bearer <key>'"


class ApiKeyGuard:
    """401 for /api requests (and /metrics, unless public) that do not carry one of ``keys``
    as a Bearer token."""

    def __init__(self, app: ASGIApp, keys: Sequence[str], *, public_metrics: bool = False) -> None:
        self.app = app
        self.keys = [key.encode() for key in keys]
        self.guard_metrics = not public_metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._guarded(scope["path"]) and not self._allowed(scope):
            await error_response(401, _NO_KEY)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _guarded(self, path: str) -> bool:
        return _is_api(path) or (self.guard_metrics and path == METRICS_PATH)

    def _allowed(self, scope: Scope) -> bool:
        headers = scope["headers"]
        authorization = next((value for name, value in headers if name == b"authorization"), b"")
        scheme, _, token = authorization.partition(b" ")
        token = token.strip()
        return scheme.lower() == b"bearer" and any(
            hmac.compare_digest(token, key) for key in self.keys
        )


def _is_api(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")


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
