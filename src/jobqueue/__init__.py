"""jobqueue: a background job service with an HTTP API, durable jobs, retries and a DLQ.

Handler authors need only this module::

    from jobqueue import JobContext, handler

    @handler("resize-image")
    async def resize_image(payload: dict, ctx: JobContext) -> dict | None: ...

Applications sharing the database enqueue jobs inside their own transaction::

    with engine.begin() as conn:
        conn.execute(...)  # the application's own writes
        jobqueue.enqueue(conn, "send-email", {"to": "user@example.com", "subject": "Hi"})
"""

from jobqueue.handlers.registry import JobContext, PermanentError, handler
from jobqueue.txenqueue import (
    IdempotencyKeyTakenError,
    JobRequest,
    enqueue,
    enqueue_async,
    enqueue_many,
    enqueue_many_async,
)

__all__ = [
    "IdempotencyKeyTakenError",
    "JobContext",
    "JobRequest",
    "PermanentError",
    "enqueue",
    "enqueue_async",
    "enqueue_many",
    "enqueue_many_async",
    "handler",
]
__version__ = "0.1.0"
