"""The built-in ``send-email`` handler: SMTP when SMTP_URL is set, else ``.eml`` outbox files."""

from __future__ import annotations

# This module is ``jobqueue.handlers.email``; absolute imports (the Python 3 default) make
# ``email`` below the standard library package, not this module.
import asyncio
import contextlib
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import parse_qs, unquote, urlsplit
from uuid import UUID

import aiosmtplib

from jobqueue.domain.jobs import JSONObject
from jobqueue.handlers.registry import JobContext, PermanentError

DEFAULT_FROM = "jobqueue@localhost"
SMTP_TIMEOUT_S = 30.0
"""Longest wait for any one SMTP command."""
SMTP_TOTAL_TIMEOUT_S = 120.0
"""Longest a whole delivery may take: a server that trickles replies cannot hold a worker."""

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True, slots=True)
class EmailRequest:
    """A validated ``send-email`` payload."""

    to: tuple[str, ...]
    subject: str
    text: str | None
    html: str | None
    sender: str


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    """Where and how to connect, as SMTP_URL says."""

    hostname: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool
    start_tls: bool | None
    """None: STARTTLS when the server offers it (aiosmtplib's default)."""


class SmtpDeliveryError(Exception):
    """A delivery failure that may pass (connection, timeout, 4xx): the job is retried."""


def _optional_str(payload: JSONObject, field: str) -> str | None:
    value = payload.get(field)
    if value is not None and not isinstance(value, str):
        raise PermanentError(f"send-email: '{field}' must be a string")
    return value


def _recipients(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise PermanentError("send-email: 'to' is required: a string or a non-empty list of them")
    if not all(isinstance(item, str) and item.strip() for item in items):
        raise PermanentError("send-email: 'to' must hold only non-empty strings")
    return tuple(item.strip() for item in items)


def parse_email_payload(payload: JSONObject) -> EmailRequest:
    """Validate a ``send-email`` payload; raise PermanentError naming the bad field."""
    if not isinstance(payload, dict):
        raise PermanentError("send-email: the payload must be an object")
    subject = payload.get("subject")
    if not isinstance(subject, str):
        raise PermanentError("send-email: 'subject' is required and must be a string")
    return EmailRequest(
        to=_recipients(payload.get("to")),
        subject=subject,
        text=_optional_str(payload, "text"),
        html=_optional_str(payload, "html"),
        sender=_optional_str(payload, "from") or DEFAULT_FROM,
    )


def build_message(request: EmailRequest, job_id: UUID) -> EmailMessage:
    """The message for ``request``; its Message-ID is the same on every attempt of the job."""
    message = EmailMessage()
    try:
        message["From"] = request.sender
        message["To"] = ", ".join(request.to)
        message["Subject"] = request.subject
    except ValueError as exc:  # CR/LF in a header value: an injection attempt or a bad payload
        raise PermanentError(f"send-email: invalid header value: {exc}") from exc
    # A stable Message-ID lets receivers drop the duplicate of an at-least-once redelivery.
    message["Message-ID"] = f"<{job_id}@jobqueue>"
    message["X-Job-Id"] = str(job_id)
    if request.html is None:
        message.set_content(request.text or "")
    elif request.text is None:
        message.set_content(request.html, subtype="html")
    else:
        message.set_content(request.text)
        message.add_alternative(request.html, subtype="html")
    return message


def _flag(query: dict[str, list[str]], name: str) -> bool | None:
    values = query.get(name)
    if not values:
        return None
    value = values[-1].lower()
    if value not in _TRUE | _FALSE:
        raise PermanentError(f"SMTP_URL: '{name}' must be true or false, not '{values[-1]}'")
    return value in _TRUE


def parse_smtp_url(url: str) -> SmtpTarget:
    """Parse ``smtp[s]://[user:pass@]host[:port][?starttls=true|false]``."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise PermanentError("SMTP_URL must look like smtp://user:pass@host:port or smtps://...")
    use_tls = parts.scheme == "smtps"
    try:
        port = parts.port or (465 if use_tls else 25)
    except ValueError as exc:
        raise PermanentError(f"SMTP_URL has an invalid port: {exc}") from exc
    start_tls = _flag(parse_qs(parts.query), "starttls")
    return SmtpTarget(
        hostname=parts.hostname,
        port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        use_tls=use_tls,
        start_tls=False if use_tls else start_tls,
    )


def _raise_for_smtp(exc: aiosmtplib.SMTPException, target: SmtpTarget) -> NoReturn:
    where = f"{target.hostname}:{target.port}"
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [refused.code for refused in exc.recipients]
    elif isinstance(exc, aiosmtplib.SMTPResponseException):
        codes = [exc.code]
    else:
        codes = []
    if codes and all(500 <= code < 600 for code in codes):
        raise PermanentError(f"SMTP server {where} rejected the message: {exc}") from exc
    raise SmtpDeliveryError(f"SMTP delivery via {where} failed: {exc}") from exc


async def send_smtp(message: EmailMessage, target: SmtpTarget) -> list[str]:
    """Send ``message``; returns the recipients the server refused while accepting others."""
    try:
        async with asyncio.timeout(SMTP_TOTAL_TIMEOUT_S):
            refused, _ = await aiosmtplib.send(
                message,
                hostname=target.hostname,
                port=target.port,
                username=target.username,
                password=target.password,
                use_tls=target.use_tls,
                start_tls=target.start_tls,
                timeout=SMTP_TIMEOUT_S,
            )
    except aiosmtplib.SMTPException as exc:
        _raise_for_smtp(exc, target)
    except (OSError, TimeoutError) as exc:
        where = f"{target.hostname}:{target.port}"
        raise SmtpDeliveryError(f"SMTP delivery via {where} failed: {exc!r}") from exc
    return sorted(refused)


def _write_atomically(directory: Path, name: str, data: bytes) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    # A dot-prefixed temp file in the same directory: invisible to *.eml readers, and
    # os.replace within one file system is atomic, so no reader sees a half-written file.
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".", suffix=".eml.tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        target = directory / name
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target


async def write_outbox(message: EmailMessage, outbox_dir: str, job_id: UUID) -> Path:
    """Write ``message`` as ``<UTC timestamp>-<job id>.eml`` in ``outbox_dir``; returns its path."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    name = f"{stamp}-{job_id}.eml"
    return await asyncio.to_thread(_write_atomically, Path(outbox_dir), name, message.as_bytes())


async def send_email(payload: JSONObject, ctx: JobContext) -> JSONObject:
    """Send an e-mail through SMTP_URL, or write it to OUTBOX_DIR when SMTP is not set."""
    message = build_message(parse_email_payload(payload), ctx.job_id)
    if ctx.settings.smtp_url:
        refused = await send_smtp(message, parse_smtp_url(ctx.settings.smtp_url))
        return {"delivered": "smtp", "refused": refused} if refused else {"delivered": "smtp"}
    path = await write_outbox(message, ctx.settings.outbox_dir, ctx.job_id)
    return {"delivered": "outbox", "path": str(path)}
