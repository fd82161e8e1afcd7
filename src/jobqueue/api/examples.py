"""The examples /docs shows for each route's request and answers (OpenAPI only: no route
reads them). ``tests/unit/test_openapi_examples.py`` checks each one against its model."""

from __future__ import annotations

from typing import Any

JOB_ID = "550e8400-e29b-41d4-a716-446655440000"

NEW_JOB: dict[str, Any] = {
    "id": JOB_ID,
    "type": "send-email",
    "payload": {"to": "user@example.com", "subject": "Welcome", "body": "Hello!"},
    "status": "pending",
    "attempts": 0,
    "nextRunAt": None,
    "createdAt": "2026-05-04T10:00:00.000Z",
    "updatedAt": "2026-05-04T10:00:00.000Z",
    "maxAttempts": 5,
    "priority": 0,
    "lastError": None,
    "result": None,
    "progress": None,
    "progressMessage": None,
    "pendingParents": None,
    "onParentFailure": "cancel",
    "flowId": None,
}
"""A job as created."""

COMPLETED_JOB: dict[str, Any] = {
    **NEW_JOB,
    "status": "completed",
    "attempts": 2,
    "updatedAt": "2026-05-04T10:00:02.512Z",
    "lastError": "SMTPServerDisconnected: Connection unexpectedly closed",
    "result": {"messageId": "<177812@jobqueue>"},
    "progress": 100,
}
"""A job that completed on its second attempt."""

FAILED_JOB: dict[str, Any] = {
    **NEW_JOB,
    "type": "webhook",
    "payload": {"url": "https://example.com/hook", "body": {"order": 42}},
    "status": "failed",
    "attempts": 5,
    "updatedAt": "2026-05-04T10:01:02.000Z",
    "lastError": "attempts exhausted (5/5): HTTP 503 from https://example.com/hook",
}

RETRIED_JOB: dict[str, Any] = {**FAILED_JOB, "status": "pending", "attempts": 0}
"""A failed job sent back by a retry."""

CANCELLED_JOB: dict[str, Any] = {
    **NEW_JOB,
    "status": "cancelled",
    "nextRunAt": "2026-05-05T08:00:00.000Z",
    "updatedAt": "2026-05-04T10:05:00.000Z",
}

ATTEMPTS: list[dict[str, Any]] = [
    {
        "number": 1,
        "worker": "host-1:4182:9f86d081",
        "startedAt": "2026-05-04T10:00:00.004Z",
        "finishedAt": "2026-05-04T10:00:00.310Z",
        "outcome": "failed",
        "error": "SMTPServerDisconnected: Connection unexpectedly closed",
        "durationMs": 305.9,
    },
    {
        "number": 2,
        "worker": "host-1:4182:9f86d081",
        "startedAt": "2026-05-04T10:00:02.312Z",
        "finishedAt": "2026-05-04T10:00:02.512Z",
        "outcome": "succeeded",
        "error": None,
        "durationMs": 199.4,
    },
]

STATS = {
    "pending": 12,
    "processing": 5,
    "completed": 1840,
    "failed": 3,
    "cancelled": 1,
    "waiting": 4,
}

SCHEDULES = [
    {
        "type": "report",
        "cron": "0 3 * * *",
        "payload": {},
        "nextRunAt": "2026-05-05T03:00:00.000Z",
    }
]

DEAD_LETTERS = [
    {
        "jobId": JOB_ID,
        "type": "webhook",
        "payload": {"url": "https://example.com/hook", "body": {"order": 42}},
        "reason": "attempts exhausted (5/5): HTTP 503 from https://example.com/hook",
        "attempts": 5,
        "failedAt": "2026-05-04T10:01:02.000Z",
    }
]

FLOW_ID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
_CHARGE = {
    **NEW_JOB,
    "type": "charge-card",
    "payload": {"order": 42},
    "status": "completed",
    "attempts": 1,
    "result": {"charged": "42.00 EUR"},
    "flowId": FLOW_ID,
}
_SHIP = {
    **NEW_JOB,
    "id": "16fd2706-8baf-433b-82eb-8c7fada847da",
    "type": "ship-order",
    "payload": {"order": 42},
    "status": "pending",
    "pendingParents": 0,
    "flowId": FLOW_ID,
}
FLOW = {
    "id": FLOW_ID,
    "status": "active",
    "counts": {
        "pending": 1,
        "processing": 0,
        "completed": 1,
        "failed": 0,
        "cancelled": 0,
        "waiting": 0,
    },
    "jobs": [
        {**_CHARGE, "dependsOn": [], "key": "charge"},
        {**_SHIP, "dependsOn": [JOB_ID], "key": "ship"},
    ],
}
"""A two-step flow whose first step completed: its second is pending now."""
RETRIED = {"retried": 3}


def error(status: int, phrase: str, message: str) -> dict[str, Any]:
    """An error answer in the service's shape."""
    return {"statusCode": status, "error": phrase, "message": message}


BAD_REQUEST = error(400, "Bad Request", "body/type: Field required")
UNAUTHORIZED = error(
    401, "Unauthorized", "Missing or wrong API key: send 'Authorization: Bearer <key>'"
)
NOT_FOUND = error(404, "Not Found", "Job not found")
FLOW_NOT_FOUND = error(404, "Not Found", "Flow not found")
CONFLICT = error(409, "Conflict", "A completed job cannot be changed")
CANNOT_CANCEL = error(
    409, "Conflict", "Only pending or running jobs can be cancelled (current status: completed)"
)
KEY_TAKEN = error(
    409,
    "Conflict",
    f"Idempotency key 'order-42' was already used for a different request (job {JOB_ID}); "
    "send the same request again, or use a new key",
)
UNAVAILABLE = error(503, "Service Unavailable", "database is unavailable; try again shortly")

CREATE_BODIES = {
    "email": {
        "summary": "Send an e-mail",
        "value": {
            "type": "send-email",
            "payload": {"to": "user@example.com", "subject": "Welcome", "body": "Hello!"},
        },
    },
    "scheduled": {
        "summary": "A webhook in an hour, at most 3 attempts, once per key",
        "value": {
            "type": "webhook",
            "payload": {"url": "https://example.com/hook", "body": {"order": 42}},
            "delayMs": 3_600_000,
            "maxAttempts": 3,
            "priority": -1,
            "idempotencyKey": "order-42",
        },
    },
}

BATCH_BODIES = {
    "two": {
        "summary": "Two jobs in one transaction",
        "value": {
            "jobs": [
                {"type": "send-email", "payload": {"to": "a@example.com", "subject": "Hi"}},
                {"type": "webhook", "payload": {"url": "https://example.com/hook"}},
            ]
        },
    }
}

UPDATE_BODIES = {
    "run-now": {"summary": "Run a scheduled job now", "value": {"nextRunAt": None}},
    "retry": {
        "summary": "Retry a failed job with 2 attempts counted",
        "value": {"status": "pending", "attempts": 2},
    },
    "cancel": {"summary": "Cancel a pending job", "value": {"status": "cancelled"}},
}

TREE_FLOW: dict[str, Any] = {
    "name": "write-report",
    "data": {"month": "2026-05"},
    "children": [
        {"name": "send-email", "data": {"to": "a@example.com", "subject": "Hi"}},
        {"name": "send-email", "data": {"to": "b@example.com", "subject": "Hi"}},
    ],
}
CHAIN_FLOW: dict[str, Any] = {
    "steps": [
        {"type": "resize-image", "payload": {"url": "https://example.com/a.png"}},
        {"type": "index-image", "payload": {}},
    ]
}
GRAPH_FLOW: dict[str, Any] = {
    "jobs": [
        {"key": "charge", "type": "charge-card", "payload": {"order": 42}},
        {"key": "ship", "type": "ship-order", "dependsOn": ["charge"]},
        {
            "key": "notify",
            "type": "send-email",
            "dependsOn": ["ship"],
            "onParentFailure": "continue",
        },
    ]
}


FLOW_BODIES = {
    "tree": {"summary": "BullMQ's tree: the report after both e-mails", "value": TREE_FLOW},
    "chain": {"summary": "A chain: index after resize", "value": CHAIN_FLOW},
    "graph": {"summary": "A graph: charge, ship, then notify", "value": GRAPH_FLOW},
}

RETRY_FAILED_BODIES = {
    "one-type": {"summary": "Only the failed webhooks", "value": {"type": "webhook"}},
    "all": {"summary": "Every failed job (or send no body)", "value": {}},
}


def answer(example: Any, description: str | None = None) -> dict[str, Any]:
    """A response's OpenAPI entry showing ``example`` (FastAPI adds the model's schema)."""
    entry: dict[str, Any] = {"content": {"application/json": {"example": example}}}
    if description is not None:
        entry["description"] = description
    return entry


def error_answer(example: dict[str, Any], description: str | None = None) -> dict[str, Any]:
    """An error response's entry: the ErrorOut model with ``example``."""
    from jobqueue.api.schemas import ErrorOut

    return {"model": ErrorOut, **answer(example, description)}
