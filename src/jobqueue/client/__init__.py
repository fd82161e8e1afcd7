"""A typed Python client of the jobqueue HTTP API, blocking (``Client``) or asyncio
(``AsyncClient``)::

    from jobqueue.client import Client

    with Client("http://127.0.0.1:3000") as jobs:
        job = jobs.create("send-email", {"to": "user@example.com", "subject": "Welcome"})
        print(jobs.get(job.id).status)

Every create carries an idempotency key, so a create retried after a lost answer returns
the job the first try made. Every failure is a ``JobQueueError``. ``docs/client.md`` is the
reference.
"""

from jobqueue.client.aio import AsyncClient
from jobqueue.client.calls import AUTO, UNSET, IdempotencyKey, JobSpec
from jobqueue.client.errors import (
    ApiError,
    AuthError,
    BadRequestError,
    ConflictError,
    ConnectError,
    JobQueueError,
    NotFoundError,
    ProtocolError,
    ServerError,
    UnavailableError,
)
from jobqueue.client.models import (
    Attempt,
    AttemptOutcome,
    DeadLetter,
    Job,
    JobStatus,
    Schedule,
    Stats,
)
from jobqueue.client.settings import ClientSettings
from jobqueue.client.sync import Client

__all__ = [
    "AUTO",
    "UNSET",
    "ApiError",
    "AsyncClient",
    "Attempt",
    "AttemptOutcome",
    "AuthError",
    "BadRequestError",
    "Client",
    "ClientSettings",
    "ConflictError",
    "ConnectError",
    "DeadLetter",
    "IdempotencyKey",
    "Job",
    "JobQueueError",
    "JobSpec",
    "JobStatus",
    "NotFoundError",
    "ProtocolError",
    "Schedule",
    "ServerError",
    "Stats",
    "UnavailableError",
]
