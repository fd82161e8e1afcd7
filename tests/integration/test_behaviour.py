"""The behaviour every mode must share, over the HTTP contract."""

from __future__ import annotations

import asyncio
import itertools
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.integration import behaviour_handlers as handlers
from tests.integration.conftest import Service, make_settings, running_service

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
STATUSES = {"pending", "processing", "completed", "failed", "cancelled", "waiting"}


async def test_a_created_job_has_the_node_shape_and_completes(service: Service) -> None:
    job = await service.create("flaky", {"failures": 0})
    assert uuid.UUID(job["id"])
    assert (job["type"], job["status"], job["attempts"], job["nextRunAt"]) == (
        "flaky",
        "pending",
        0,
        None,
    )
    assert ISO_MS.match(job["createdAt"])
    assert ISO_MS.match(job["updatedAt"])
    done = await service.wait_for(job["id"], "completed")
    assert done["attempts"] == 1
    assert handlers.calls[uuid.UUID(job["id"])] == [1]


async def test_failures_are_retried_until_success(service: Service) -> None:
    job = await service.create("flaky", {"failures": 2})
    done = await service.wait_for(job["id"], "completed")
    assert done["attempts"] == 3
    assert done["lastError"] == "RuntimeError: planned failure 2"
    assert handlers.calls[uuid.UUID(job["id"])] == [1, 2, 3]


async def test_exhausted_jobs_fail_into_the_dlq_and_retry_brings_them_back(
    service: Service,
) -> None:
    job = await service.create("flaky", {"failures": 99}, maxAttempts=3)
    failed = await service.wait_for(job["id"], "failed")
    assert failed["attempts"] == 3
    dlq = (await service.client.get("/api/dlq")).json()
    assert [entry["jobId"] for entry in dlq] == [job["id"]]
    assert dlq[0]["attempts"] == 3
    assert dlq[0]["payload"] == {"failures": 99}
    assert "attempts exhausted (3/3)" in dlq[0]["reason"]
    assert ISO_MS.match(dlq[0]["failedAt"])
    retried = await service.client.post(f"/api/jobs/{job['id']}/retry")
    assert retried.status_code == 200
    assert (retried.json()["status"], retried.json()["attempts"]) == ("pending", 0)


async def test_retry_failed_retries_the_failed_jobs_of_a_type_once(service: Service) -> None:
    first_runs_fail = [await service.create("fails-first-run") for _ in range(3)]
    permanent = [await service.create("permanent") for _ in range(2)]
    for job in [*first_runs_fail, *permanent]:
        await service.wait_for(job["id"], "failed")
    retry_failed = "/api/jobs/retry-failed"
    answer = await service.client.post(retry_failed, json={"type": "fails-first-run"})
    assert (answer.status_code, answer.json()) == (200, {"retried": 3})
    for job in first_runs_fail:
        done = await service.wait_for(job["id"], "completed")
        assert handlers.calls[uuid.UUID(job["id"])] == [1, 1]
        assert done["attempts"] == 1
    again = await service.client.post(retry_failed, json={"type": "fails-first-run"})
    assert again.json() == {"retried": 0}
    for job in permanent:
        assert (await service.wait_for(job["id"], "failed"))["attempts"] == 1
        assert handlers.calls[uuid.UUID(job["id"])] == [1]
    every_type = await service.client.post(retry_failed)  # no body: every type
    assert every_type.json() == {"retried": 2}
    for job in permanent:
        await service.wait_for(job["id"], "failed")
        assert handlers.calls[uuid.UUID(job["id"])] == [1, 1]


async def test_concurrent_retry_failed_calls_retry_each_job_once(service: Service) -> None:
    jobs = [await service.create("fails-first-run") for _ in range(6)]
    for job in jobs:
        await service.wait_for(job["id"], "failed")
    answers = await asyncio.gather(
        *(service.client.post("/api/jobs/retry-failed", json={}) for _ in range(3))
    )
    assert sum(answer.json()["retried"] for answer in answers) == 6
    for job in jobs:
        await service.wait_for(job["id"], "completed")
    stats = (await service.client.get("/api/jobs/stats")).json()
    assert (stats["completed"], stats["pending"], stats["processing"]) == (6, 0, 0)
    for job in jobs:
        assert handlers.calls[uuid.UUID(job["id"])] == [1, 1]  # one run after the retry


async def test_a_permanent_error_fails_at_once(service: Service) -> None:
    job = await service.create("permanent")
    failed = await service.wait_for(job["id"], "failed")
    assert failed["attempts"] == 1
    assert failed["lastError"] == "this can never work"


async def test_synchronous_handlers_run(service: Service) -> None:
    job = await service.create("sync-echo", {"a": 1})
    assert (await service.wait_for(job["id"], "completed"))["attempts"] == 1


async def test_a_hung_handler_times_out_and_each_attempt_counts(service: Service) -> None:
    for job_type in ("hang", "hang-sync"):
        job = await service.create(job_type, maxAttempts=2)
        failed = await service.wait_for(job["id"], "failed")
        assert failed["attempts"] == 2
        assert failed["lastError"] == (
            "attempts exhausted (2/2): "
            "TimeoutError: the attempt ran longer than 100 ms (its handler's timeout_ms)"
        )
        assert handlers.calls[uuid.UUID(job["id"])] == [1, 2]


async def test_retry_of_a_job_that_is_not_failed_is_400(service: Service) -> None:
    job = await service.create("flaky")
    await service.wait_for(job["id"], "completed")
    response = await service.client.post(f"/api/jobs/{job['id']}/retry")
    assert response.status_code == 400
    assert response.json() == {
        "statusCode": 400,
        "error": "Bad Request",
        "message": "Only failed jobs can be retried (current status: completed)",
    }


async def test_stats_counts_every_status(service: Service) -> None:
    job = await service.create("flaky")
    await service.wait_for(job["id"], "completed")
    stats = (await service.client.get("/api/jobs/stats")).json()
    assert set(stats) == STATUSES
    assert stats["completed"] == 1
    assert sum(stats.values()) == 1


async def test_list_filters_and_pages_newest_first(service: Service) -> None:
    ids = [(await service.create("sync-echo", {"n": n}))["id"] for n in range(3)]
    for job_id in ids:
        await service.wait_for(job_id, "completed")
    await service.create("flaky", runAt="2999-01-01T00:00:00Z")
    listed = (await service.client.get("/api/jobs", params={"type": "sync-echo"})).json()
    assert [job["id"] for job in listed] == ids[::-1]
    page = (await service.client.get("/api/jobs", params={"limit": 1, "offset": 1})).json()
    assert [job["id"] for job in page] == [ids[2]]
    pending = (await service.client.get("/api/jobs", params={"status": "pending"})).json()
    assert [job["type"] for job in pending] == ["flaky"]


async def test_a_blocked_job_shows_processing_and_refuses_changes(service: Service) -> None:
    job = await service.create("blocker")
    job_id = uuid.UUID(job["id"])
    await handlers.started[job_id].wait()
    running = (await service.client.get(f"/api/jobs/{job['id']}")).json()
    assert (running["status"], running["attempts"]) == ("processing", 1)
    patch = await service.client.patch(f"/api/jobs/{job['id']}", json={"status": "pending"})
    assert patch.status_code == 409
    handlers.gates[job_id].set()
    await service.wait_for(job["id"], "completed")
    cancel = await service.client.post(f"/api/jobs/{job['id']}/cancel")
    assert cancel.status_code == 409  # a finished job cannot be cancelled


async def test_scheduled_jobs_wait_and_cancel_withdraws_them(service: Service) -> None:
    job = await service.create("flaky", runAt="2999-01-01T00:00:00Z")
    assert job["nextRunAt"] == "2999-01-01T00:00:00.000Z"
    cancelled = await service.client.post(f"/api/jobs/{job['id']}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert handlers.calls[uuid.UUID(job["id"])] == []


async def test_patch_next_run_at_null_runs_a_scheduled_job_now(service: Service) -> None:
    job = await service.create("flaky", runAt="2999-01-01T00:00:00Z")
    patched = await service.client.patch(f"/api/jobs/{job['id']}", json={"nextRunAt": None})
    assert patched.status_code == 200
    assert (await service.wait_for(job["id"], "completed"))["attempts"] == 1


async def test_patch_pending_on_a_failed_job_acts_as_a_retry(service: Service) -> None:
    job = await service.create("permanent")
    await service.wait_for(job["id"], "failed")
    patched = await service.client.patch(f"/api/jobs/{job['id']}", json={"status": "pending"})
    assert (patched.status_code, patched.json()["attempts"]) == (200, 0)
    await service.wait_for(job["id"], "failed")
    assert handlers.calls[uuid.UUID(job["id"])] == [1, 1]


async def test_delete_removes_the_job(service: Service) -> None:
    job = await service.create("flaky", runAt="2999-01-01T00:00:00Z")
    deleted = await service.client.delete(f"/api/jobs/{job['id']}")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert (await service.client.get(f"/api/jobs/{job['id']}")).status_code == 404
    assert (await service.client.delete(f"/api/jobs/{job['id']}")).status_code == 404


async def test_an_idempotency_key_returns_the_first_job(service: Service) -> None:
    body = {"type": "flaky", "payload": {}, "runAt": "2999-01-01T00:00:00Z"}
    headers = {"Idempotency-Key": "order-42"}
    first = await service.client.post("/api/jobs", json=body, headers=headers)
    again = await service.client.post("/api/jobs", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert len((await service.client.get("/api/jobs")).json()) == 1


async def test_concurrent_creates_with_one_key_make_one_job(service: Service) -> None:
    body = {"type": "flaky", "payload": {}, "idempotencyKey": "race-1"}
    answers = await asyncio.gather(
        *(service.client.post("/api/jobs", json=body) for _ in range(20))
    )
    assert sorted(answer.status_code for answer in answers) == [200] * 19 + [201]
    assert len({answer.json()["id"] for answer in answers}) == 1
    batch = {"jobs": [body, body, {**body, "idempotencyKey": "race-2"}]}
    batches = await asyncio.gather(
        *(service.client.post("/api/jobs/batch", json=batch) for _ in range(5))
    )
    assert {answer.status_code for answer in batches} == {201}
    ids = {job["id"] for answer in batches for job in answer.json()}
    assert len(ids) == 2
    assert len((await service.client.get("/api/jobs")).json()) == 2


async def test_a_batch_is_created_in_one_request(service: Service) -> None:
    body = {"jobs": [{"type": "sync-echo", "payload": {"n": n}} for n in range(5)]}
    response = await service.client.post("/api/jobs/batch", json=body)
    assert response.status_code == 201
    for job in response.json():
        await service.wait_for(job["id"], "completed")


async def test_a_repeated_batch_with_idempotency_keys_creates_nothing_new(
    service: Service,
) -> None:
    later = "2999-01-01T00:00:00Z"
    body = {
        "jobs": [{"type": "flaky", "idempotencyKey": f"k{n}", "runAt": later} for n in range(3)]
    }
    first = await service.client.post("/api/jobs/batch", json=body)
    again = await service.client.post("/api/jobs/batch", json=body)
    assert [job["id"] for job in again.json()] == [job["id"] for job in first.json()]
    assert len((await service.client.get("/api/jobs")).json()) == 3


async def test_a_string_holding_u0000_is_refused_naming_its_field(service: Service) -> None:
    nul = "x\x00y"
    cases = [
        ("/api/jobs", {"type": "flaky", "payload": {"a": [nul]}}, "body/payload/a/0"),
        ("/api/jobs", {"type": "flaky", "payload": {nul: 1}}, "body/payload/x\\u0000y"),
        ("/api/jobs", {"type": nul}, "body/type"),
        ("/api/jobs", {"type": "flaky", "idempotencyKey": nul}, "body/idempotencyKey"),
        ("/api/jobs/batch", {"jobs": [{"type": "flaky", "payload": {"b": nul}}]}, "body/jobs/0"),
    ]
    for path, body, field in cases:
        answer = await service.client.post(path, json=body)
        assert answer.status_code == 400, answer.text
        assert answer.json()["message"].startswith(field), answer.text
        assert "U+0000" in answer.json()["message"]
    listed = await service.client.get("/api/jobs", params={"type": nul})
    assert listed.status_code == 400
    assert listed.json()["message"].startswith("querystring/type: the character U+0000")
    assert (await service.client.get("/api/jobs")).json() == []


async def test_a_handlers_result_is_kept_and_shown(service: Service) -> None:
    value = {"n": [1, 2.5, None, -(2**63)], "s": "é€𝄞", "nested": {"ok": True}}
    job = await service.create("returns", {"value": value})
    done = await service.wait_for(job["id"], "completed")
    assert done["result"] == value
    listed = (await service.client.get("/api/jobs", params={"type": "returns"})).json()
    assert [item["result"] for item in listed] == [value]
    plain = await service.create("returns", {"value": "just text"})
    assert (await service.wait_for(plain["id"], "completed"))["result"] == "just text"
    assert job["result"] is None  # nothing before it ran


async def test_a_result_that_cannot_be_stored_fails_the_attempt(service: Service) -> None:
    expected = {
        "set": "the handler returned a value that is not JSON",
        "nul": "result/s: the character U+0000",
        "big": "more than JOB_RESULT_MAX_BYTES (65536)",
    }
    for kind, words in expected.items():
        job = await service.create("returns-unstorable", {"kind": kind}, maxAttempts=1)
        failed = await service.wait_for(job["id"], "failed")
        assert failed["lastError"].startswith("attempts exhausted (1/1): ResultError: "), failed
        assert words in failed["lastError"]
        assert failed["result"] is None


async def test_every_attempt_is_kept_in_the_jobs_history(service: Service) -> None:
    job = await service.create("flaky", {"failures": 1})
    await service.wait_for(job["id"], "completed")
    response = await service.client.get(f"/api/jobs/{job['id']}/attempts")
    assert response.status_code == 200
    first, second = response.json()
    assert (first["number"], first["outcome"], first["error"]) == (
        1,
        "failed",
        "RuntimeError: planned failure 1",
    )
    assert (second["number"], second["outcome"], second["error"]) == (2, "succeeded", None)
    for attempt in (first, second):
        assert ISO_MS.match(attempt["startedAt"])
        assert ISO_MS.match(attempt["finishedAt"])
        assert attempt["startedAt"] <= attempt["finishedAt"]
        assert attempt["durationMs"] >= 0
        assert attempt["worker"]
    assert first["finishedAt"] <= second["startedAt"]


async def test_the_history_of_a_job_never_run_is_empty_and_of_none_404(service: Service) -> None:
    job = await service.create("flaky", {"failures": 0}, runAt="2999-01-01T00:00:00Z")
    assert (await service.client.get(f"/api/jobs/{job['id']}/attempts")).json() == []
    missing = await service.client.get(f"/api/jobs/{uuid.uuid4()}/attempts")
    assert missing.status_code == 404
    assert (await service.client.get("/api/jobs/not-a-uuid/attempts")).status_code == 400


async def test_one_idempotency_key_with_another_request_is_409_naming_the_key(
    service: Service,
) -> None:
    body = {"type": "flaky", "payload": {"n": 1}, "delayMs": 3_600_000}
    headers = {"Idempotency-Key": "order-7"}
    first = await service.client.post("/api/jobs", json=body, headers=headers)
    same = await service.client.post(
        "/api/jobs", json=dict(reversed(body.items())), headers=headers
    )
    assert (first.status_code, same.status_code) == (201, 200)  # key order does not matter
    for changed in ({"payload": {"n": 2}}, {"priority": 5}, {"type": "permanent"}):
        other = await service.client.post("/api/jobs", json={**body, **changed}, headers=headers)
        assert other.status_code == 409, other.text
        assert "Idempotency key 'order-7'" in other.json()["message"]
        assert first.json()["id"] in other.json()["message"]
    batch = {
        "jobs": [{**body, "idempotencyKey": "b"}, {**body, "idempotencyKey": "b", "priority": 1}]
    }
    assert (await service.client.post("/api/jobs/batch", json=batch)).status_code == 409
    assert len((await service.client.get("/api/jobs")).json()) == 1  # nothing else was made

    await service.client.delete(f"/api/jobs/{first.json()['id']}")  # the key goes with its job
    reused = await service.client.post("/api/jobs", json={**body, "priority": 5}, headers=headers)
    assert reused.status_code == 201


async def test_prune_deletes_finished_jobs_with_their_history_and_keys(service: Service) -> None:
    later = "2999-01-01T00:00:00Z"
    done = await service.create("flaky", {"failures": 0}, idempotencyKey="prune-me")
    failed = await service.create("permanent")
    waiting = await service.create("flaky", {}, runAt=later)
    cancelled = await service.create("flaky", {}, runAt=later)
    await service.client.post(f"/api/jobs/{cancelled['id']}/cancel")
    await service.wait_for(done["id"], "completed")
    await service.wait_for(failed["id"], "failed")

    assert await service.runtime.service.prune(timedelta(hours=1)) == 0  # too recent
    assert await service.runtime.service.prune(timedelta(0)) == 2
    gone = [
        (await service.client.get(f"/api/jobs/{job['id']}")).status_code
        for job in (done, cancelled)
    ]
    kept = [
        (await service.client.get(f"/api/jobs/{job['id']}")).status_code
        for job in (failed, waiting)
    ]
    assert (gone, kept) == ([404, 404], [200, 200])
    assert len((await service.client.get("/api/dlq")).json()) == 1
    reused = await service.create("flaky", {"failures": 1}, idempotencyKey="prune-me")
    assert reused["id"] != done["id"]  # the key went with its job


async def test_a_handlers_own_retry_policy_rules_its_type(service: Service) -> None:
    job = await service.create("flaky-fixed", {"failures": 99})
    assert job["maxAttempts"] == 2  # the handler's, not JOB_MAX_ATTEMPTS
    failed = await service.wait_for(job["id"], "failed")
    assert failed["lastError"].startswith("attempts exhausted (2/2)")
    first, second = (await service.client.get(f"/api/jobs/{job['id']}/attempts")).json()
    waited = datetime.fromisoformat(second["startedAt"]) - datetime.fromisoformat(
        first["finishedAt"]
    )
    assert waited >= timedelta(milliseconds=200)  # its fixed backoff, not the settings' 50 ms
    own = await service.create("flaky-fixed", {"failures": 2}, maxAttempts=3)  # the job's wins
    assert (await service.wait_for(own["id"], "completed"))["attempts"] == 3


async def test_progress_shows_while_a_job_runs(service: Service) -> None:
    job = await service.create("progressing")
    job_id = uuid.UUID(job["id"])
    await asyncio.wait_for(handlers.started[job_id].wait(), 10)

    async def progress_of(url: str) -> tuple[object, object]:
        body = (await service.client.get(url)).json()
        return body["progress"], body["progressMessage"]

    url = f"/api/jobs/{job['id']}"
    for _ in range(500):  # written within a quarter of a second: a bound of 10 s
        if await progress_of(url) == (50, "step 50"):
            break
        await asyncio.sleep(0.02)
    assert await progress_of(url) == (50, "step 50")
    handlers.gates[job_id].set()
    done = await service.wait_for(job["id"], "completed")
    assert (done["progress"], done["progressMessage"]) == (50, "step 50")

    threaded = await service.create("progressing-sync")
    for _ in range(500):
        if await progress_of(f"/api/jobs/{threaded['id']}") == (70, "from a thread"):
            break
        await asyncio.sleep(0.02)
    assert await progress_of(f"/api/jobs/{threaded['id']}") == (70, "from a thread")


async def test_cancelling_a_running_job_tells_its_handler_and_ends_it(service: Service) -> None:
    job = await service.create("cooperative")
    job_id = uuid.UUID(job["id"])
    await asyncio.wait_for(handlers.started[job_id].wait(), 10)
    cancel = await service.client.post(f"/api/jobs/{job['id']}/cancel")
    assert (cancel.status_code, cancel.json()["status"]) == (200, "cancelled")
    for _ in range(500):  # the worker looks twice a second: a bound of 10 s
        if job_id in handlers.heard_cancel:
            break
        await asyncio.sleep(0.02)
    assert job_id in handlers.heard_cancel
    await wait_for_history(service, job["id"], 1)
    final = (await service.client.get(f"/api/jobs/{job['id']}")).json()
    assert (final["status"], final["attempts"]) == ("cancelled", 1)  # not retried
    assert handlers.calls[job_id] == [1]


async def test_a_handler_that_ignores_a_cancel_is_stopped_after_the_grace(service: Service) -> None:
    job = await service.create("blocker")  # waits for its gate, whatever happens
    job_id = uuid.UUID(job["id"])
    await asyncio.wait_for(handlers.started[job_id].wait(), 10)
    await service.client.post(f"/api/jobs/{job['id']}/cancel")
    [attempt] = await wait_for_history(service, job["id"], 1)  # JOB_CANCEL_GRACE_MS: 300 ms
    assert (attempt["outcome"], attempt["error"]) == (
        "cancelled",
        "CancelledError: the job was cancelled while this attempt ran",
    )
    assert (await service.client.get(f"/api/jobs/{job['id']}")).json()["status"] == "cancelled"
    assert handlers.calls[job_id] == [1]


async def wait_for_history(service: Service, job_id: str, count: int) -> list[dict[str, Any]]:
    """The job's attempts once there are ``count`` (within 10 s)."""
    history: list[dict[str, Any]] = []
    for _ in range(500):
        history = (await service.client.get(f"/api/jobs/{job_id}/attempts")).json()
        if len(history) >= count:
            return history
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {job_id} has {len(history)} attempts, not {count}")


async def test_a_schedule_makes_jobs_at_its_ticks_and_shows_its_next_run(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path, schedules="sync-echo=* * * * * *")
    async with running_service(settings) as service:
        [schedule] = (await service.client.get("/api/schedules")).json()
        assert (schedule["type"], schedule["cron"], schedule["payload"]) == (
            "sync-echo",
            "* * * * * *",
            {},
        )
        assert ISO_MS.match(schedule["nextRunAt"])
        assert schedule["nextRunAt"] > datetime.now(UTC).isoformat()[:23]
        jobs: list[dict[str, Any]] = []
        for _ in range(1000):  # every second: two ticks, with a bound of 10 s
            jobs = (await service.client.get("/api/jobs", params={"type": "sync-echo"})).json()
            if sum(job["status"] == "completed" for job in jobs) >= 2:
                break
            await asyncio.sleep(0.01)
        assert sum(job["status"] == "completed" for job in jobs) >= 2, jobs
        ticks = (
            [job["idempotencyKey"] for job in jobs]
            if jobs and "idempotencyKey" in jobs[0]
            else None
        )
        assert ticks is None or len(set(ticks)) == len(ticks)


async def test_a_type_with_concurrency_1_runs_one_job_at_a_time(service: Service) -> None:
    handlers.runs.clear()
    jobs = [await service.create("one-at-a-time") for _ in range(5)]
    for job in jobs:
        await service.wait_for(job["id"], "completed")
    ordered = sorted(handlers.runs)
    assert len(ordered) == 5
    assert all(end <= later for (_, end), (later, _) in itertools.pairwise(ordered)), ordered
