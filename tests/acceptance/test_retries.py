"""Retries with exponential backoff, the dead-letter queue and manual retry, over real HTTP."""

from __future__ import annotations

import itertools
import re

from tests.support.serve import Json, ServeFactory, ServeProcess
from tests.support.target import WebhookTarget

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
GAP_TOLERANCE_S = 1.0
"""How much later than its backoff an attempt may start (scheduling, a slow machine)."""


def webhook_job(server: ServeProcess, target: WebhookTarget) -> Json:
    """Create a ``webhook`` job aimed at ``target``."""
    return server.create_job("webhook", {"url": target.url, "body": {"hello": "world"}})


def test_webhook_retried_until_it_succeeds(
    serve: ServeFactory, webhook_target: WebhookTarget
) -> None:
    webhook_target.script([500, 500], then=200)
    server = serve(JOB_BACKOFF_MS="100")
    job = webhook_job(server, webhook_target)

    server.wait_for_status(job["id"], "completed", attempts=3)

    hits = webhook_target.hits
    assert [hit.attempt for hit in hits] == ["1", "2", "3"]
    assert {hit.job_id for hit in hits} == {job["id"]}
    assert all(hit.body == {"hello": "world"} for hit in hits), hits


def assert_backoff_doubles(times: list[float], first_backoff_s: float) -> None:
    """Each wait between attempts is at least its backoff, not much more, and grows."""
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    expected = [first_backoff_s * 2**n for n in range(len(gaps))]
    shown = [round(gap, 3) for gap in gaps]
    for gap, backoff in zip(gaps, expected, strict=True):
        assert backoff <= gap < backoff + GAP_TOLERANCE_S, f"gaps {shown}, backoffs {expected}"
    assert all(a < b for a, b in itertools.pairwise(gaps)), f"gaps {shown}"


def assert_one_dead_letter(server: ServeProcess, job: Json) -> None:
    """GET /api/dlq holds exactly one entry, for ``job``, after its 5 attempts."""
    response = server.client.get("/api/dlq")
    assert response.status_code == 200, response.text
    entries = response.json()
    assert len(entries) == 1, entries
    entry = entries[0]
    assert entry["jobId"] == job["id"]
    assert (entry["type"], entry["payload"], entry["attempts"]) == ("webhook", job["payload"], 5)
    assert "500" in str(entry["reason"]), entry
    assert TIMESTAMP.match(entry["failedAt"]), entry


def test_backoff_doubles_then_dead_letter_then_manual_retry(
    serve: ServeFactory, webhook_target: WebhookTarget
) -> None:
    webhook_target.answer_from_now_on(500)
    server = serve(JOB_BACKOFF_MS="200")
    job = webhook_job(server, webhook_target)

    failed = server.wait_for_status(job["id"], "failed", timeout=15, attempts=5)
    assert failed["lastError"], failed
    hits = webhook_target.hits
    assert [hit.attempt for hit in hits] == ["1", "2", "3", "4", "5"]
    assert_backoff_doubles([hit.at for hit in hits], 0.2)
    assert_one_dead_letter(server, job)

    webhook_target.answer_from_now_on(200)
    retried = server.client.post(f"/api/jobs/{job['id']}/retry")
    assert retried.status_code == 200, retried.text
    body = retried.json()
    assert (body["status"], body["attempts"], body["nextRunAt"]) == ("pending", 0, None), body

    server.wait_for_status(job["id"], "completed", attempts=1)
    assert webhook_target.hits[-1].attempt == "1"

    again = server.client.post(f"/api/jobs/{job['id']}/retry")
    assert again.status_code == 400, again.text
    assert again.json() == {
        "statusCode": 400,
        "error": "Bad Request",
        "message": "Only failed jobs can be retried (current status: completed)",
    }
