"""A typed Python client of the jobqueue HTTP API, blocking (``Client``) or asyncio
(``AsyncClient``)::

    from jobqueue.client import Client

    with Client("http://127.0.0.1:3000") as jobs:
        job = jobs.create("send-email", {"to": "user@example.com", "subject": "Welcome"})
        print(jobs.get(job.id).status)

Every create carries an idempotency key, so a create retried after a lost answer returns
the job the first try made. Every failure is a ``JobQueueError``. ``docs/client.md`` is the
reference.

Workflows are built with ``chain``, ``group``, ``chord`` and ``job`` (``canvas``) and sent
with ``create_flow``::

    flow = jobs.create_flow(chord([job("send", {"to": to}) for to in to_all], job("report")))
"""

from jobqueue.client.aio import AsyncClient
from jobqueue.client.calls import AUTO, UNSET, IdempotencyKey, JobSpec, ParentFailure
from jobqueue.client.canvas import Canvas, FlowRequest, chain, chord, group, job
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
    Flow,
    FlowMember,
    FlowStatus,
    Job,
    JobStatus,
    OnParentFailure,
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
    "Canvas",
    "Client",
    "ClientSettings",
    "ConflictError",
    "ConnectError",
    "DeadLetter",
    "Flow",
    "FlowMember",
    "FlowRequest",
    "FlowStatus",
    "IdempotencyKey",
    "Job",
    "JobQueueError",
    "JobSpec",
    "JobStatus",
    "NotFoundError",
    "OnParentFailure",
    "ParentFailure",
    "ProtocolError",
    "Schedule",
    "ServerError",
    "Stats",
    "UnavailableError",
    "chain",
    "chord",
    "group",
    "job",
]
