"""Payload validation of the built-in ``send-email`` and ``webhook`` handlers: no I/O."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from jobqueue.config import Settings
from jobqueue.handlers.email import (
    DEFAULT_FROM,
    build_message,
    parse_email_payload,
    parse_smtp_url,
    send_email,
)
from jobqueue.handlers.registry import JobContext, PermanentError
from jobqueue.handlers.webhook import (
    DEFAULT_TIMEOUT_MS,
    MAX_TIMEOUT_MS,
    parse_webhook_payload,
    webhook,
)


def _ctx(job_type: str) -> JobContext:
    # An unreachable SMTP URL and outbox: reaching either would mean validation did not stop us.
    settings = Settings(smtp_url="smtp://127.0.0.1:1", outbox_dir="/nonexistent/outbox")
    return JobContext(uuid4(), job_type, 1, 5, settings)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"subject": "Hi"}, "to"),
        ({"to": 42, "subject": "Hi"}, "to"),
        ({"to": [], "subject": "Hi"}, "to"),
        ({"to": ["a@example.com", 7], "subject": "Hi"}, "to"),
        ({"to": ["  "], "subject": "Hi"}, "to"),
        ({"to": "a@example.com"}, "subject"),
        ({"to": "a@example.com", "subject": ["Hi"]}, "subject"),
        ({"to": "a@example.com", "subject": "Hi", "text": 1}, "text"),
        ({"to": "a@example.com", "subject": "Hi", "html": {}}, "html"),
        ({"to": "a@example.com", "subject": "Hi", "from": False}, "from"),
    ],
)
def test_invalid_email_payload_is_permanent_and_names_field(
    payload: dict[str, Any], field: str
) -> None:
    with pytest.raises(PermanentError, match=f"'{field}'"):
        parse_email_payload(payload)


async def test_send_email_handler_rejects_bad_payload_before_any_delivery() -> None:
    with pytest.raises(PermanentError, match="'subject'"):
        await send_email({"to": "a@example.com"}, _ctx("send-email"))


def test_email_payload_accepts_single_address_or_list_and_defaults_sender() -> None:
    single = parse_email_payload({"to": "a@example.com", "subject": "Hi"})
    many = parse_email_payload({"to": ["a@example.com", "b@example.com"], "subject": "Hi"})
    assert single.to == ("a@example.com",)
    assert many.to == ("a@example.com", "b@example.com")
    assert single.sender == DEFAULT_FROM


def test_header_injection_in_subject_is_permanent() -> None:
    request = parse_email_payload({"to": "a@example.com", "subject": "Hi\r\nBcc: x@evil.test"})
    with pytest.raises(PermanentError, match="header"):
        build_message(request, uuid4())


def test_message_carries_job_id_and_stable_message_id() -> None:
    job_id = uuid4()
    request = parse_email_payload({"to": "a@example.com", "subject": "Hi", "html": "<p>x</p>"})
    first, second = build_message(request, job_id), build_message(request, job_id)
    assert first["X-Job-Id"] == str(job_id)
    assert first["Message-ID"] == second["Message-ID"]
    assert str(job_id) in first["Message-ID"]
    assert first.get_content_type() == "text/html"


@pytest.mark.parametrize(
    ("url", "host", "port", "tls", "starttls"),
    [
        ("smtp://mail.example.com", "mail.example.com", 25, False, None),
        ("smtps://mail.example.com", "mail.example.com", 465, True, False),
        ("smtp://mail.example.com:587?starttls=true", "mail.example.com", 587, False, True),
        ("smtp://mail.example.com:2525?starttls=false", "mail.example.com", 2525, False, False),
    ],
)
def test_smtp_url_gives_host_port_and_tls_mode(
    url: str, host: str, port: int, tls: bool, starttls: bool | None
) -> None:
    target = parse_smtp_url(url)
    assert (target.hostname, target.port, target.use_tls, target.start_tls) == (
        host,
        port,
        tls,
        starttls,
    )


def test_smtp_url_credentials_are_unquoted() -> None:
    target = parse_smtp_url("smtp://us%40er:p%3Ass@mail.example.com:587")
    assert (target.username, target.password) == ("us@er", "p:ss")


@pytest.mark.parametrize(
    "url", ["http://mail.example.com", "smtp://", "smtp://h?starttls=maybe", "smtp://h:99999"]
)
def test_bad_smtp_url_is_permanent(url: str) -> None:
    with pytest.raises(PermanentError, match="SMTP_URL"):
        parse_smtp_url(url)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "url"),
        ({"url": 5}, "url"),
        ({"url": ""}, "url"),
        ({"url": "ftp://example.com/hook"}, "url"),
        ({"url": "/relative/hook"}, "url"),
        ({"url": "http://"}, "url"),
        ({"url": "http://example.com", "headers": ["X-A"]}, "headers"),
        ({"url": "http://example.com", "headers": {"X-A": 1}}, "headers"),
        ({"url": "http://example.com", "headers": {"X-A": "a\r\nX-B: b"}}, "headers"),
        ({"url": "http://example.com", "timeoutMs": "100"}, "timeoutMs"),
        ({"url": "http://example.com", "timeoutMs": 0}, "timeoutMs"),
        ({"url": "http://example.com", "timeoutMs": 1.5}, "timeoutMs"),
        ({"url": "http://example.com", "timeoutMs": True}, "timeoutMs"),
    ],
)
def test_invalid_webhook_payload_is_permanent_and_names_field(
    payload: dict[str, Any], field: str
) -> None:
    with pytest.raises(PermanentError, match=f"'{field}'"):
        parse_webhook_payload(payload)


async def test_webhook_handler_rejects_bad_payload_before_any_request() -> None:
    with pytest.raises(PermanentError, match="'url'"):
        await webhook({"url": "mailto:a@example.com"}, _ctx("webhook"))


def test_webhook_payload_defaults_body_headers_and_timeout() -> None:
    request = parse_webhook_payload({"url": "https://example.com/hook"})
    assert request.body == {}
    assert request.headers == {}
    assert request.timeout_ms == DEFAULT_TIMEOUT_MS


def test_webhook_timeout_is_capped_and_any_json_body_kept() -> None:
    payload = {"url": "http://example.com", "timeoutMs": 10**9, "body": [1, "two", None]}
    request = parse_webhook_payload(payload)
    assert request.timeout_ms == MAX_TIMEOUT_MS
    assert request.body == [1, "two", None]
