"""Built-in handlers: ``noop``, ``send-email`` and ``webhook``."""

from __future__ import annotations

from jobqueue.domain.jobs import JSONObject

# Imported for their side effect: each module registers its handler with @handler, and this
# module is the one load_handler_modules imports to load the built-ins.
from jobqueue.handlers import email, webhook  # noqa: F401
from jobqueue.handlers.registry import JobContext, handler


@handler("noop")
async def noop(payload: JSONObject, ctx: JobContext) -> None:
    """Do nothing: for tests and benchmarks."""
