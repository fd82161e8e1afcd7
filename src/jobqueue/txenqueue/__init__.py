"""Transactional enqueue: insert jobs inside the application's own open transaction.

The job rows are written on the application's connection, in its transaction, with the job
store's own statements: they exist exactly when that transaction commits, and a rollback
leaves nothing behind. See ``docs/transactional-enqueue.md``.
"""

from jobqueue.txenqueue.asynchronous import enqueue_async, enqueue_many_async
from jobqueue.txenqueue.plan import IdempotencyKeyTakenError
from jobqueue.txenqueue.requests import JobRequest
from jobqueue.txenqueue.sync import enqueue, enqueue_many

__all__ = [
    "IdempotencyKeyTakenError",
    "JobRequest",
    "enqueue",
    "enqueue_async",
    "enqueue_many",
    "enqueue_many_async",
]
