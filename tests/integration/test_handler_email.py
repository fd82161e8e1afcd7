"""``send-email`` against a real outbox directory and a real local SMTP server (aiosmtpd)."""

from __future__ import annotations

import email
import socket
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from jobqueue.config import Settings
from jobqueue.handlers.email import SmtpDeliveryError, send_email
from jobqueue.handlers.registry import JobContext, PermanentError

REJECTED = "nobody@example.com"


class RecordingHandler:
    """Keeps every message the server accepts; refuses one address with a 5xx."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        """Refuse REJECTED for good, accept anyone else."""
        if address == REJECTED:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        """Record the envelope."""
        self.envelopes.append(envelope)
        return "250 Message accepted"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, RecordingHandler]]:
    """A real SMTP server on loopback; start() returns once it accepts connections."""
    recorder = RecordingHandler()
    controller = Controller(recorder, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield controller.port, recorder
    finally:
        controller.stop()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound but not listening: connecting is refused, and nobody else can take it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def _ctx(**settings: Any) -> JobContext:
    return JobContext(uuid4(), "send-email", 1, 5, Settings(**settings))


def _parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _files(directory: Path) -> list[Path]:
    # Sync on purpose: the handler has finished, nothing else runs on the loop meanwhile.
    return sorted(directory.iterdir())


def _body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert isinstance(part, EmailMessage)
    content: str = part.get_content()
    return content


async def test_outbox_mode_writes_parseable_eml_with_headers_and_bodies(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox" / "nested"
    ctx = _ctx(outbox_dir=str(outbox))
    payload = {"to": "user@example.com", "subject": "Welcome", "text": "Hello", "html": "<b>Hi</b>"}

    result = await send_email(payload, ctx)

    files = _files(outbox)
    assert [Path(result["path"])] == files
    assert result["delivered"] == "outbox"
    assert files[0].name.endswith(f"-{ctx.job_id}.eml")
    message = _parse(files[0].read_bytes())
    assert message["To"] == "user@example.com"
    assert message["Subject"] == "Welcome"
    assert message["X-Job-Id"] == str(ctx.job_id)
    assert _body(message, "plain").strip() == "Hello"
    assert _body(message, "html").strip() == "<b>Hi</b>"


async def test_outbox_rerun_of_same_job_leaves_only_complete_files(tmp_path: Path) -> None:
    ctx = _ctx(outbox_dir=str(tmp_path))
    payload = {"to": ["a@example.com", "b@example.com"], "subject": "Twice"}

    await send_email(payload, ctx)
    await send_email(payload, ctx)

    files = _files(tmp_path)
    assert files
    assert all(path.suffix == ".eml" for path in files)
    for path in files:
        message = _parse(path.read_bytes())
        assert message["To"] == "a@example.com, b@example.com"
        assert _body(message, "plain") == "\n"


async def test_smtp_mode_delivers_to_local_server(
    smtp_server: tuple[int, RecordingHandler], tmp_path: Path
) -> None:
    port, recorder = smtp_server
    ctx = _ctx(smtp_url=f"smtp://127.0.0.1:{port}", outbox_dir=str(tmp_path))
    payload = {"to": "user@example.com", "subject": "Via SMTP", "text": "Body", "from": "me@x.test"}

    result = await send_email(payload, ctx)

    assert result == {"delivered": "smtp"}
    assert _files(tmp_path) == []
    [envelope] = recorder.envelopes
    assert envelope.mail_from == "me@x.test"
    assert envelope.rcpt_tos == ["user@example.com"]
    assert isinstance(envelope.original_content, bytes)
    message = _parse(envelope.original_content)
    assert message["Subject"] == "Via SMTP"
    assert message["X-Job-Id"] == str(ctx.job_id)
    assert _body(message, "plain").strip() == "Body"


async def test_smtp_permanent_rejection_is_permanent_error(
    smtp_server: tuple[int, RecordingHandler],
) -> None:
    port, recorder = smtp_server
    ctx = _ctx(smtp_url=f"smtp://127.0.0.1:{port}")

    with pytest.raises(PermanentError, match="550"):
        await send_email({"to": REJECTED, "subject": "Bounce"}, ctx)
    assert recorder.envelopes == []


async def test_smtp_partial_rejection_delivers_and_reports_refused(
    smtp_server: tuple[int, RecordingHandler],
) -> None:
    port, recorder = smtp_server
    ctx = _ctx(smtp_url=f"smtp://127.0.0.1:{port}")

    result = await send_email({"to": ["ok@example.com", REJECTED], "subject": "Half"}, ctx)

    assert result == {"delivered": "smtp", "refused": [REJECTED]}
    assert recorder.envelopes[0].rcpt_tos == ["ok@example.com"]


async def test_smtp_refused_connection_is_retryable_error(closed_port: int) -> None:
    ctx = _ctx(smtp_url=f"smtp://127.0.0.1:{closed_port}")

    with pytest.raises(SmtpDeliveryError, match=f"127.0.0.1:{closed_port}") as caught:
        await send_email({"to": "user@example.com", "subject": "Nobody home"}, ctx)
    assert not isinstance(caught.value, PermanentError)
