"""The built-in ``webhook`` handler: POST a JSON body to a URL, retrying what may pass."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import httpx

from jobqueue.domain.jobs import JSONObject
from jobqueue.handlers.registry import JobContext, PermanentError

DEFAULT_TIMEOUT_MS = 10_000
MAX_TIMEOUT_MS = 300_000
RETRYABLE_4XX = frozenset({408, 429})
"""Request Timeout and Too Many Requests: the receiver asks us to try again later."""


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    """A validated ``webhook`` payload."""

    url: httpx.URL
    body: Any
    headers: dict[str, str]
    timeout_ms: int


class WebhookError(Exception):
    """A failure that may pass (timeout, refused connection, 408, 429, 5xx): the job is retried."""


def _url(value: Any) -> httpx.URL:
    if not isinstance(value, str) or not value:
        raise PermanentError("webhook: 'url' is required and must be a string")
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL as exc:
        raise PermanentError(f"webhook: 'url' is not a valid URL: {exc}") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise PermanentError("webhook: 'url' must be an absolute http:// or https:// URL")
    return url


def _headers(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(key, str) and isinstance(item, str) for key, item in value.items()
    ):
        raise PermanentError("webhook: 'headers' must be an object of string to string")
    # Rejected here rather than by the HTTP library, whose error would be retried forever.
    if any(ch in text for pair in value.items() for text in pair for ch in "\r\n\0"):
        raise PermanentError("webhook: 'headers' must not contain line breaks or NUL")
    return dict(value)


def _timeout_ms(value: Any) -> int:
    if value is None:
        return DEFAULT_TIMEOUT_MS
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise PermanentError("webhook: 'timeoutMs' must be a positive integer")
    return min(value, MAX_TIMEOUT_MS)


def parse_webhook_payload(payload: JSONObject) -> WebhookRequest:
    """Validate a ``webhook`` payload; raise PermanentError naming the bad field."""
    if not isinstance(payload, dict):
        raise PermanentError("webhook: the payload must be an object")
    return WebhookRequest(
        url=_url(payload.get("url")),
        body=payload.get("body", {}),
        headers=_headers(payload.get("headers")),
        timeout_ms=_timeout_ms(payload.get("timeoutMs")),
    )


def _shown(url: httpx.URL) -> str:
    # Credentials in the URL must not end up in lastError, the DLQ or the logs.
    return str(url.copy_with(username=None, password=None))


def check_status(response: httpx.Response, url: httpx.URL) -> None:
    """Return on 2xx; raise PermanentError or WebhookError as the status code says."""
    code = response.status_code
    if 200 <= code < 300:
        return
    where = _shown(url)
    if 300 <= code < 400:
        location = response.headers.get("location", "no Location header")
        raise PermanentError(
            f"webhook {where} answered {code} (redirect to {location}); "
            "redirects are not followed: use the final URL"
        )
    if 400 <= code < 500 and code not in RETRYABLE_4XX:
        raise PermanentError(f"webhook {where} answered {code} {response.reason_phrase}")
    raise WebhookError(f"webhook {where} answered {code} {response.reason_phrase}; will retry")


async def post_webhook(request: WebhookRequest, headers: httpx.Headers) -> int:
    """POST ``request.body`` as JSON; returns the 2xx status code or raises."""
    seconds = request.timeout_ms / 1000
    where = _shown(request.url)
    # Serialized here, not with httpx's json=, which sends no body at all for a null body.
    content = json.dumps(request.body, separators=(",", ":")).encode()
    try:
        # httpx's timeout bounds each phase; asyncio.timeout bounds the request as a whole.
        # Streamed and never read: only the status matters, however large the answer.
        async with (
            asyncio.timeout(seconds),
            httpx.AsyncClient(timeout=seconds) as client,
            client.stream("POST", request.url, content=content, headers=headers) as response,
        ):
            check_status(response, request.url)
    except (httpx.TimeoutException, TimeoutError) as exc:
        raise WebhookError(f"webhook {where} timed out after {request.timeout_ms} ms") from exc
    except httpx.TransportError as exc:
        detail = str(exc) or type(exc).__name__
        raise WebhookError(f"webhook {where} failed: {detail}") from exc
    return response.status_code


async def webhook(payload: JSONObject, ctx: JobContext) -> JSONObject:
    """POST the payload's ``body`` as JSON to its ``url``, with the job's id and attempt."""
    request = parse_webhook_payload(payload)
    headers = httpx.Headers(request.headers)
    headers.setdefault("Content-Type", "application/json")
    # Set, not merged: case-insensitively replaces any the payload sent, so a receiver
    # can rely on them for idempotency.
    headers["X-Job-Id"] = str(ctx.job_id)
    headers["X-Job-Attempt"] = str(ctx.attempt)
    status = await post_webhook(request, headers)
    return {"status": status}
