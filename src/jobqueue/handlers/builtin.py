"""Built-in handlers: ``noop``, ``send-email`` and ``webhook``.

The e-mail and webhook modules are imported on first use: their libraries (aiosmtplib,
httpx) cost every process tens of megabytes that most never need, an API process included
(it loads the handlers only to know their types).
"""

from __future__ import annotations

from jobqueue.domain.jobs import JSONObject
from jobqueue.handlers.registry import JobContext, handler


@handler("noop")
async def noop(payload: JSONObject, ctx: JobContext) -> None:
    """Do nothing: for tests and benchmarks."""


@handler("send-email")
async def send_email(payload: JSONObject, ctx: JobContext) -> JSONObject:
    """Send an e-mail through SMTP_URL, or write it to OUTBOX_DIR (``handlers/email.py``)."""
    from jobqueue.handlers import email

    return await email.send_email(payload, ctx)


@handler("webhook")
async def webhook(payload: JSONObject, ctx: JobContext) -> JSONObject:
    """POST the payload's ``body`` as JSON to its ``url`` (``handlers/webhook.py``)."""
    from jobqueue.handlers import webhook

    return await webhook.webhook(payload, ctx)
