"""The client's wire mapping without I/O: requests built, answers parsed, errors mapped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import orjson
import pytest

from jobqueue.api.responses import attempt_json, dead_letter_json, job_json, schedule_json
from jobqueue.client import calls
from jobqueue.client.calls import AUTO, JobSpec
from jobqueue.client.errors import (
    ApiError,
    AuthError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    ProtocolError,
    ServerError,
    UnavailableError,
)
from jobqueue.client.models import AttemptOutcome, JobStatus, Stats
from jobqueue.domain.jobs import DeadLetter
from jobqueue.domain.schedules import Schedule
from tests.unit.factories import T0, body_of, ended, make_job, wire


def test_a_job_as_the_server_writes_it_parses_back_to_the_same_fields() -> None:
    job = make_job(
        JobStatus.COMPLETED,
        payload={"to": "a@example.com"},
        attempts=1,
        next_run_at=T0 + timedelta(seconds=2),
        priority=-3,
        last_error="boom",
        result={"sent": True},
        progress=100,
        progress_message="done",
    )
    parsed = calls.get(job.id).parse(wire(job_json(job)))
    assert (parsed.id, parsed.type, parsed.payload) == (job.id, "noop", {"to": "a@example.com"})
    assert (parsed.status, parsed.attempts, parsed.max_attempts) == (JobStatus.COMPLETED, 1, 5)
    assert (parsed.next_run_at, parsed.created_at, parsed.updated_at) == (
        T0 + timedelta(seconds=2),
        T0,
        T0,
    )
    assert (parsed.priority, parsed.last_error, parsed.result) == (-3, "boom", {"sent": True})
    assert (parsed.progress, parsed.progress_message) == (100, "done")


def test_a_node_service_job_without_the_later_keys_parses_with_defaults() -> None:
    data = wire(job_json(make_job()))
    node_keys = {"id", "type", "payload", "status", "attempts", "nextRunAt", "createdAt"}
    node_job = {key: value for key, value in data.items() if key in {*node_keys, "updatedAt"}}
    parsed = calls.get(data["id"]).parse(node_job)
    assert (parsed.max_attempts, parsed.priority, parsed.result, parsed.last_error) == (
        None,
        0,
        None,
        None,
    )


def test_attempts_dead_letters_and_schedules_parse_from_the_servers_json() -> None:
    job = make_job(JobStatus.PROCESSING, attempts=1)
    (attempt,) = calls.attempts(job.id).parse(wire([attempt_json(ended(job, "boom"))]))
    assert (attempt.number, attempt.outcome, attempt.error) == (1, AttemptOutcome.FAILED, "boom")
    entry = DeadLetter(job.id, "noop", {"a": 1}, "boom", 5, T0)
    (letter,) = calls.dead_letters().parse(wire([dead_letter_json(entry)]))
    assert (letter.job_id, letter.reason, letter.attempts, letter.failed_at) == (
        job.id,
        "boom",
        5,
        T0,
    )
    schedule = Schedule("report", "0 3 * * *", {"x": 1})
    (parsed,) = calls.schedules().parse(wire([schedule_json(schedule, T0)]))
    assert (parsed.type, parsed.cron, parsed.payload, parsed.next_run_at) == (
        "report",
        "0 3 * * *",
        {"x": 1},
        T0,
    )


def test_stats_keep_every_count_the_server_sent() -> None:
    counts = {"pending": 1, "processing": 2, "completed": 3, "failed": 4, "cancelled": 5}
    stats = calls.stats().parse({**counts, "paused": 6})
    assert stats == Stats(1, 2, 3, 4, 5)
    assert stats.counts["paused"] == 6
    assert stats.total == 21
    assert Stats(1, 2, 3, 4, 5).total == 15


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ("<html>", "expected a JSON object for a job, got str"),
        ({"id": "x"}, "the job's 'id' is not valid: 'x'"),
        ({}, "the job has no 'id' field"),
    ],
)
def test_an_answer_that_is_not_a_job_is_a_protocol_error(data: Any, words: str) -> None:
    with pytest.raises(ProtocolError, match=words):
        calls.get(uuid4()).parse(data)


def test_a_mistyped_field_is_a_protocol_error_naming_it() -> None:
    data = wire(job_json(make_job()))
    with pytest.raises(ProtocolError, match="'attempts' is bool"):
        calls.get(data["id"]).parse({**data, "attempts": True})
    with pytest.raises(ProtocolError, match="'status' is not valid: 'paused'"):
        calls.get(data["id"]).parse({**data, "status": "paused"})


def test_a_create_sends_camel_case_and_a_fresh_idempotency_key_each_time() -> None:
    spec = JobSpec(
        "send-email",
        {"to": "a@example.com"},
        delay=timedelta(seconds=1.5),
        priority=2,
        max_attempts=3,
    )
    first, second = calls.create(spec), calls.create(spec)
    assert (first.method, first.path, first.repeatable) == ("POST", "/api/jobs", True)
    assert body_of(first) == {
        "type": "send-email",
        "payload": {"to": "a@example.com"},
        "delayMs": 1500,
        "priority": 2,
        "maxAttempts": 3,
    }
    keys = {first.headers["Idempotency-Key"], second.headers["Idempotency-Key"]}
    assert len(keys) == 2
    assert all(UUID(key).version == 4 for key in keys)
    assert first.request_headers()["Content-Type"] == "application/json"


def test_a_create_with_its_own_key_or_none_at_all() -> None:
    mine = calls.create(JobSpec("noop", idempotency_key="order-42"))
    assert mine.headers == {"Idempotency-Key": "order-42"}
    assert mine.repeatable
    without = calls.create(JobSpec("noop", idempotency_key=None))
    assert without.headers == {}
    assert not without.repeatable


def test_a_run_at_is_sent_as_iso_and_must_know_its_time_zone() -> None:
    at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert body_of(calls.create(JobSpec("noop", run_at=at)))["runAt"] == at.isoformat()
    with pytest.raises(ValueError, match="run_at must be timezone-aware"):
        JobSpec("noop", run_at=datetime(2030, 1, 2)).body()


def test_a_batch_gives_each_job_its_own_key_unless_told_otherwise() -> None:
    call = calls.create_many([JobSpec("noop"), JobSpec("noop", idempotency_key="k")])
    jobs = body_of(call)["jobs"]
    assert jobs[1]["idempotencyKey"] == "k"
    assert UUID(jobs[0]["idempotencyKey"]).version == 4
    assert call.repeatable
    unkeyed = calls.create_many([JobSpec("noop"), JobSpec("noop", idempotency_key=None)])
    assert not unkeyed.repeatable
    with pytest.raises(ValueError, match="at least one job"):
        calls.create_many([])


def test_list_sends_only_the_filters_given() -> None:
    assert calls.list_jobs().params == {"limit": 100, "offset": 0}
    call = calls.list_jobs(JobStatus.FAILED, "webhook", 5, 10)
    assert call.params == {"limit": 5, "offset": 10, "status": "failed", "type": "webhook"}


def test_update_tells_a_null_next_run_from_an_absent_one() -> None:
    job_id = uuid4()
    assert body_of(calls.update(job_id, next_run_at=None)) == {"nextRunAt": None}
    assert body_of(calls.update(job_id, status="pending")) == {"status": "pending"}
    with pytest.raises(ValueError, match="at least one"):
        calls.update(job_id)


def test_only_reads_and_keyed_creates_are_repeatable() -> None:
    job_id = uuid4()
    repeatable: list[calls.Call[Any]] = [
        calls.get(job_id),
        calls.stats(),
        calls.list_jobs(),
        calls.dead_letters(),
    ]
    once: list[calls.Call[Any]] = [calls.retry(job_id), calls.cancel(job_id), calls.delete(job_id)]
    once += [calls.update(job_id, attempts=0), calls.retry_failed("noop")]
    assert all(call.repeatable for call in repeatable)
    assert not any(call.repeatable for call in once)


def test_ids_are_escaped_into_the_path() -> None:
    assert calls.get("../stats").path == "/api/jobs/..%2Fstats"


def test_retry_failed_sends_the_type_when_given() -> None:
    assert body_of(calls.retry_failed()) == {}
    call = calls.retry_failed("webhook")
    assert (call.method, call.path, body_of(call)) == (
        "POST",
        "/api/jobs/retry-failed",
        {"type": "webhook"},
    )
    assert call.parse({"retried": 3}) == 3


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthError),
        (404, NotFoundError),
        (409, ConflictError),
        (413, BadRequestError),
        (418, ApiError),
        (500, ServerError),
        (503, UnavailableError),
    ],
)
def test_error_answers_map_to_one_exception_each(status: int, cls: type[ApiError]) -> None:
    body = orjson.dumps({"statusCode": status, "error": "Some Error", "message": "it broke"})
    with pytest.raises(cls) as caught:
        calls.read_answer(calls.stats(), status, body)
    assert type(caught.value) is cls
    assert (caught.value.status, caught.value.message, caught.value.error) == (
        status,
        "it broke",
        "Some Error",
    )
    assert str(caught.value) == f"{status} Some Error: it broke"


def test_an_error_answer_not_in_the_api_shape_keeps_its_text() -> None:
    with pytest.raises(UnavailableError, match="Bad gateway from the proxy"):
        calls.read_answer(calls.stats(), 503, b"Bad gateway from the proxy")
    with pytest.raises(ServerError, match="HTTP 500"):
        calls.read_answer(calls.stats(), 500, b"")


def test_success_answers_are_parsed_and_204_has_no_body() -> None:
    assert calls.read_answer(calls.delete(uuid4()), 204, b"") is None
    assert calls.read_answer(calls.retry_failed(), 200, b'{"retried": 2}') == 2
    with pytest.raises(ProtocolError, match="is not JSON"):
        calls.read_answer(calls.stats(), 200, b"<html>")


def test_nan_in_a_payload_is_refused_before_sending() -> None:
    with pytest.raises(ValueError, match="not JSON compliant"):
        calls.create(JobSpec("noop", {"x": float("nan")}))


def test_auto_is_the_default_key() -> None:
    assert JobSpec("noop").idempotency_key is AUTO
