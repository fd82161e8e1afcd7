"""Response bodies written straight from domain objects, and request bodies parsed strictly."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID

import orjson
import pytest
from fastapi import HTTPException

from jobqueue.api.jsonbody import parse_json
from jobqueue.api.responses import dead_letter_json, dumps, job_json
from jobqueue.domain.jobs import DeadLetter, JobStatus
from jobqueue.domain.json_values import NON_FINITE
from tests.unit.factories import T0, make_job

JOB_ID = UUID("550e8400-e29b-41d4-a716-446655440000")


def test_a_job_has_the_node_services_keys_in_order_then_ours() -> None:
    job = make_job(
        JobStatus.FAILED,
        id=JOB_ID,
        type="send-email",
        payload={"to": "user@example.com", "n": [1, 2.5, None]},
        attempts=5,
        next_run_at=T0 + timedelta(seconds=2, microseconds=345_678),
        updated_at=datetime(2026, 5, 4, 12, 0, tzinfo=timezone(timedelta(hours=2))),
        priority=-3,
        last_error="boom",
    )
    body = dumps(job_json(job))
    assert body == (
        b'{"id":"550e8400-e29b-41d4-a716-446655440000","type":"send-email",'
        b'"payload":{"to":"user@example.com","n":[1,2.5,null]},"status":"failed","attempts":5,'
        b'"nextRunAt":"2026-05-04T10:00:02.345Z","createdAt":"2026-05-04T10:00:00.000Z",'
        b'"updatedAt":"2026-05-04T10:00:00.000Z","maxAttempts":5,"priority":-3,"lastError":"boom",'
        b'"result":null,"progress":null,"progressMessage":null,"pendingParents":null,'
        b'"onParentFailure":"cancel","flowId":null}'
    )


def test_a_pending_job_has_null_next_run_and_error() -> None:
    body = orjson.loads(dumps(job_json(make_job())))
    assert (body["nextRunAt"], body["lastError"]) == (None, None)


def test_a_dead_letter_has_the_node_services_dlq_data() -> None:
    entry = DeadLetter(JOB_ID, "webhook", {"url": "http://x"}, "HTTP 404", 1, T0)
    assert dumps(dead_letter_json(entry)) == (
        b'{"jobId":"550e8400-e29b-41d4-a716-446655440000","type":"webhook",'
        b'"payload":{"url":"http://x"},"reason":"HTTP 404","attempts":1,'
        b'"failedAt":"2026-05-04T10:00:00.000Z"}'
    )


@pytest.mark.parametrize(
    "payload",
    [{"big": 2**70}, {"text": "\ud800"}, {"deep": json.loads("[" * 300 + "]" * 300)}],
    ids=["int-beyond-64-bits", "lone-surrogate", "nested-300-levels"],
)
def test_payloads_orjson_refuses_are_still_written(payload: dict[str, object]) -> None:
    assert json.loads(dumps(payload)) == payload


def test_strict_parse_reads_plain_json() -> None:
    assert parse_json(b'{"type": "noop", "payload": {"x": [1, 2.5]}}') == {
        "type": "noop",
        "payload": {"x": [1, 2.5]},
    }


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (b'{"type": "noop", "payload": {"x": NaN}}', "body/payload/x"),
        (b'{"payload": {"list": [1, -Infinity]}}', "body/payload/list/1"),
        (b'{"payload": {"x": 1e400}}', "body/payload/x"),
        (b'{"jobs": [{"type": "a"}, {"payload": {"y": Infinity}}]}', "body/jobs/1/payload/y"),
    ],
)
def test_nan_and_infinity_are_400_naming_where_they_are(body: bytes, where: str) -> None:
    with pytest.raises(HTTPException) as refused:
        parse_json(body)
    assert (refused.value.status_code, refused.value.detail) == (400, f"{where}: {NON_FINITE}")


@pytest.mark.parametrize("body", [b'{"type": ', b'{"type": "\xff"}', b'"\\ud800"'])
def test_other_invalid_json_is_the_parsers_decode_error(body: bytes) -> None:
    with pytest.raises(json.JSONDecodeError):
        parse_json(body)


def test_integers_beyond_64_bits_are_refused_naming_the_field() -> None:
    # orjson would read them as rounded floats: the number stored would not be the one sent.
    with pytest.raises(HTTPException) as refused:
        parse_json(b'{"payload": {"n": [1, -9223372036854775809]}}')
    assert refused.value.status_code == 400
    assert refused.value.detail == (
        "body/payload/n/1: integers beyond 64 bits cannot be stored exactly"
    )


def test_64_bit_integers_and_long_digit_strings_are_kept_exactly() -> None:
    body = b'{"a": -9223372036854775808, "b": 18446744073709551615, "c": "12345678901234567890123"}'
    assert parse_json(body) == {
        "a": -(2**63),
        "b": 2**64 - 1,
        "c": "12345678901234567890123",
    }


def test_timestamps_of_any_zone_are_written_in_utc() -> None:
    moment = datetime(2026, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    job = make_job(created_at=moment, updated_at=moment.astimezone(UTC))
    body = job_json(job)
    assert body["createdAt"] == body["updatedAt"] == "2025-12-31T23:30:00.000Z"
