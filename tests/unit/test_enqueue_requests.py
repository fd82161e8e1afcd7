"""``jobqueue.enqueue``'s requests: validated as POST /api/jobs validates, planned without I/O."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobqueue.api.schemas import CreateJobBody
from jobqueue.domain.errors import IdempotencyConflictError, InvalidJobError
from jobqueue.handlers.registry import handler
from jobqueue.store import postgres_sql, sqlite_sql
from jobqueue.txenqueue import JobRequest
from jobqueue.txenqueue.plan import EnqueuePlan
from jobqueue.txenqueue.requests import default_max_attempts, new_jobs

WHEN = datetime(2031, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (JobRequest(""), "type: String should have at least 1 character"),
        (JobRequest("t" * 101), "type: String should have at most 100 characters"),
        (JobRequest("a\x00b"), "type: the character U+0000"),
        (JobRequest("t", {"x": [math.nan]}), "payload/x/0: NaN and Infinity"),
        (JobRequest("t", {"k\x00": 1}), "payload/k\x00: the character U+0000"),
        (JobRequest("t", {"n": 2**64}), "payload/n: integers beyond 64 bits"),
        (JobRequest("t", {"at": WHEN}), "payload: not JSON"),
        (JobRequest("t", run_at=datetime(2031, 1, 1)), "run_at: Input should have timezone"),
        (JobRequest("t", run_at=WHEN, delay=timedelta(1)), "give runAt or delayMs, not both"),
        (JobRequest("t", delay=timedelta(seconds=-1)), "delay: Input should be greater"),
        (JobRequest("t", delay=timedelta(days=367)), "delay: Input should be less"),
        (JobRequest("t", priority=1_000_001), "priority: Input should be less"),
        (JobRequest("t", max_attempts=101), "max_attempts: Input should be less"),
        (JobRequest("t", idempotency_key=""), "idempotency_key: Value should have at least 1"),
        (
            JobRequest("t", idempotency_key="k" * 256),
            "idempotency_key: Value should have at most 255",
        ),
    ],
)
def test_what_the_api_refuses_is_refused_naming_the_field(request_: JobRequest, field: str) -> None:
    with pytest.raises(InvalidJobError) as refused:
        new_jobs([request_])
    assert field in str(refused.value)


def test_a_payload_that_is_not_a_mapping_is_refused() -> None:
    bad: Any = [1, 2]
    with pytest.raises(InvalidJobError, match="payload: must be a mapping"):
        new_jobs([JobRequest("t", bad)])


def test_any_type_is_accepted_as_an_api_that_accepts_unknown_types() -> None:
    (new,) = new_jobs([JobRequest("handled-elsewhere")])
    assert new.type == "handled-elsewhere"


def test_a_keyed_request_has_the_fingerprint_the_api_gives_the_same_request() -> None:
    (new,) = new_jobs([JobRequest("t", {"a": 1}, delay=timedelta(seconds=3), idempotency_key="k")])
    body = CreateJobBody.model_validate({"type": "t", "payload": {"a": 1}, "delayMs": 3000})
    assert new.request_fingerprint == body.to_new_job("k").request_fingerprint
    assert new.run_at is not None


def test_the_default_attempts_are_the_handlers_own_or_the_settings() -> None:
    @handler("txenqueue-three-attempts", max_attempts=3)
    def three(payload: dict[str, Any], ctx: object) -> None: ...

    assert default_max_attempts("txenqueue-three-attempts") == 3
    assert default_max_attempts("txenqueue-unregistered") == 5


def test_without_keys_nothing_is_looked_up_and_one_insert_writes_every_row() -> None:
    plan = EnqueuePlan("sqlite", new_jobs([JobRequest("a"), JobRequest("b")]))
    assert plan.key_lookup() is None
    (insert,) = plan.writes([])
    assert insert.sql == sqlite_sql.INSERT_JOB
    assert insert.many
    assert [row[0] for row in insert.params] == [job_id.hex for job_id in plan.ids]


def test_on_postgres_the_insert_is_the_stores_and_the_outbox_names_the_jobs() -> None:
    plan = EnqueuePlan("postgresql", new_jobs([JobRequest("a"), JobRequest("b")]))
    insert, notify = plan.writes([])
    assert insert.sql == postgres_sql.INSERT_JOBS
    assert not insert.many
    assert insert.params[0] == tuple(plan.ids)
    assert notify.sql == postgres_sql.NOTIFY_OUTBOX
    assert notify.params == (plan.ids,)


def test_a_held_key_answers_with_its_job_and_another_request_conflicts() -> None:
    held = uuid.uuid4()
    (same,) = new_jobs([JobRequest("a", idempotency_key="k")])
    plan = EnqueuePlan("postgresql", [same, same])
    lookup = plan.key_lookup()
    assert lookup is not None
    assert lookup.params == (["k"],)
    assert plan.writes([("k", held, same.request_fingerprint)]) == []
    assert plan.ids == [held, held]
    (other,) = new_jobs([JobRequest("a", {"other": True}, idempotency_key="k")])
    with pytest.raises(IdempotencyConflictError):
        EnqueuePlan("sqlite", [other]).writes([("k", held.hex, same.request_fingerprint)])
