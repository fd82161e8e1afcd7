"""jobqueue: a background job service with an HTTP API, durable jobs, retries and a DLQ.

Handler authors need only this module::

    from jobqueue import JobContext, handler

    @handler("resize-image")
    async def resize_image(payload: dict, ctx: JobContext) -> dict | None: ...
"""

from jobqueue.handlers.registry import JobContext, PermanentError, handler

__all__ = ["JobContext", "PermanentError", "handler"]
__version__ = "0.1.0"
