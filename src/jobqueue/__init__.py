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

from typing import TYPE_CHECKING, Any

from jobqueue.handlers.registry import JobContext, PermanentError, handler

if TYPE_CHECKING:
    from jobqueue.txenqueue import (
        IdempotencyKeyTakenError,
        JobRequest,
        enqueue,
        enqueue_async,
        enqueue_many,
        enqueue_many_async,
    )

_ENQUEUE_NAMES = frozenset(
    {
        "IdempotencyKeyTakenError",
        "JobRequest",
        "enqueue",
        "enqueue_async",
        "enqueue_many",
        "enqueue_many_async",
    }
)


def __getattr__(name: str) -> Any:
    """The transactional-enqueue names, imported on first use: the API's request models
    they validate with would otherwise load into every worker process (2 MiB each)."""
    if name in _ENQUEUE_NAMES:
        from jobqueue import txenqueue

        return getattr(txenqueue, name)
    raise AttributeError(f"module 'jobqueue' has no attribute {name!r}")


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
