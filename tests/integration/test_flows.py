"""Workflows in every mode, over HTTP: chains, fan-out and fan-in, failures, retries, cancels."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from jobqueue.domain.attempts import attempt_of
from jobqueue.domain.jobs import utcnow
from jobqueue.domain.outcome import Succeeded
from tests.integration import behaviour_handlers as handlers
from tests.integration.conftest import RedisMode, Service, make_settings, running_service

FAN_OUT = 1000
FAN_OUT_TIMEOUT_S = 120


async def create_flow(service: Service, body: dict[str, Any]) -> dict[str, Any]:
    response = await service.client.post("/api/flows", json=body)
    assert response.status_code == 201, response.text
    flow: dict[str, Any] = response.json()
    return flow


async def wait_for_flow(
    service: Service, flow_id: str, status: str, timeout: float = 15
) -> dict[str, Any]:
    """Poll the flow until it reaches ``status``; fail with its counts."""
    flow: dict[str, Any] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        flow = (await service.client.get(f"/api/flows/{flow_id}")).json()
        if flow.get("status") == status:
            return flow
        await asyncio.sleep(0.05)
    pytest.fail(f"flow {flow_id} not {status} within {timeout}s: {flow.get('counts')}")


def by_key(flow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {job["key"]: job for job in flow["jobs"]}


async def test_a_chain_of_five_passes_each_result_to_the_next(service: Service) -> None:
    steps = [{"type": "chain-step", "payload": {"start": 1}}] + [{"type": "chain-step"}] * 4
    created = await create_flow(service, {"steps": steps})
    keys = by_key(created)
    assert [keys[str(n)]["status"] for n in range(5)] == ["pending"] + ["waiting"] * 4
    assert keys["1"]["dependsOn"] == [keys["0"]["id"]]
    done = await wait_for_flow(service, created["id"], "completed")
    read_back = by_key(done)  # GET /api/flows/:id names each member by its key too
    assert [read_back[str(n)]["result"] for n in range(5)] == [{"n": n} for n in range(1, 6)]
    assert {key: job["id"] for key, job in read_back.items()} == {
        key: job["id"] for key, job in keys.items()
    }
    for n in range(1, 5):
        parent = uuid.UUID(keys[str(n - 1)]["id"])
        seen = handlers.parents_seen[uuid.UUID(keys[str(n)]["id"])]
        assert seen == [{parent: {"n": n}}]


@pytest.mark.timeout(FAN_OUT_TIMEOUT_S + 30)
async def test_a_fan_out_of_1000_runs_its_fan_in_once_with_every_result(service: Service) -> None:
    children = [{"name": "returns", "data": {"value": n}} for n in range(FAN_OUT)]
    created = await create_flow(service, {"name": "fan-in", "children": children})
    root = by_key(created)["0"]
    assert (root["status"], root["pendingParents"]) == ("waiting", FAN_OUT)
    await wait_for_flow(service, created["id"], "completed", timeout=FAN_OUT_TIMEOUT_S)
    fan_in = uuid.UUID(root["id"])
    assert handlers.calls[fan_in] == [1]
    [seen] = handlers.parents_seen[fan_in]
    assert len(seen) == FAN_OUT
    assert sorted(seen.values()) == list(range(FAN_OUT))
    final = await service.wait_for(root["id"], "completed")
    assert final["result"] == {"parents": FAN_OUT, "sum": sum(range(FAN_OUT))}


async def test_a_job_waits_visibly_for_the_job_it_depends_on(service: Service) -> None:
    parent = await service.create("blocker")
    child = await service.create("fan-in", dependsOn=[parent["id"]])
    assert (child["status"], child["pendingParents"]) == ("waiting", 1)
    await handlers.started[uuid.UUID(parent["id"])].wait()
    stats = (await service.client.get("/api/jobs/stats")).json()
    assert (stats["waiting"], stats["processing"]) == (1, 1)
    listed = (await service.client.get("/api/jobs", params={"status": "waiting"})).json()
    assert [job["id"] for job in listed] == [child["id"]]
    handlers.gates[uuid.UUID(parent["id"])].set()
    done = await service.wait_for(child["id"], "completed")
    assert done["result"] == {"parents": 1, "sum": 0}
    assert done["pendingParents"] == 0


async def test_a_job_of_a_completed_parent_runs_at_once(service: Service) -> None:
    parent = await service.create("returns", {"value": 7})
    await service.wait_for(parent["id"], "completed")
    child = await service.create("fan-in", dependsOn=[parent["id"]])
    assert child["status"] == "pending"
    assert (await service.wait_for(child["id"], "completed"))["result"]["sum"] == 7


async def test_a_failing_parent_cancels_its_dependants_unless_they_continue(
    service: Service,
) -> None:
    jobs = [
        {"key": "parent", "type": "permanent"},
        {"key": "child", "type": "returns", "dependsOn": ["parent"]},
        {"key": "grandchild", "type": "returns", "dependsOn": ["child"]},
        {"key": "anyway", "type": "fan-in", "dependsOn": ["parent"], "onParentFailure": "continue"},
    ]
    created = await create_flow(service, {"jobs": jobs})
    keys = {key: job["id"] for key, job in by_key(created).items()}
    done = await wait_for_flow(service, created["id"], "failed")
    members = {job["id"]: job for job in done["jobs"]}
    child, grandchild = members[keys["child"]], members[keys["grandchild"]]
    assert child["status"] == "cancelled"
    assert child["lastError"] == f"cancelled: parent job {keys['parent']} failed"
    assert grandchild["status"] == "cancelled"
    assert grandchild["lastError"] == f"cancelled: parent job {keys['child']} was cancelled"
    anyway = members[keys["anyway"]]
    assert anyway["status"] == "completed"
    assert anyway["result"] == {"parents": 1, "sum": 0}
    assert handlers.parents_seen[uuid.UUID(keys["anyway"])] == [{uuid.UUID(keys["parent"]): None}]
    assert handlers.calls[uuid.UUID(keys["child"])] == []


async def test_a_job_created_after_its_parent_failed_is_cancelled_at_once(
    service: Service,
) -> None:
    parent = await service.create("permanent")
    await service.wait_for(parent["id"], "failed")
    child = await service.create("returns", dependsOn=[parent["id"]])
    assert child["status"] == "cancelled"
    assert child["lastError"] == f"cancelled: parent job {parent['id']} failed"


@pytest.mark.parametrize("how", ["retry", "retry-failed"])
async def test_retrying_a_failed_member_re_arms_its_dependants(service: Service, how: str) -> None:
    jobs = [
        {"key": "parent", "type": "permanent-then-gated"},
        {"key": "child", "type": "fan-in", "dependsOn": ["parent"]},
        {"key": "grandchild", "type": "fan-in", "dependsOn": ["child"]},
    ]
    created = await create_flow(service, {"jobs": jobs})
    keys = {key: job["id"] for key, job in by_key(created).items()}
    await wait_for_flow(service, created["id"], "failed")
    if how == "retry":
        retried = await service.client.post(f"/api/jobs/{keys['parent']}/retry")
    else:
        retried = await service.client.post("/api/jobs/retry-failed", json={})
        assert retried.json() == {"retried": 1}
    assert retried.status_code == 200, retried.text
    for key in ("child", "grandchild"):
        rearmed = (await service.client.get(f"/api/jobs/{keys[key]}")).json()
        assert (rearmed["status"], rearmed["lastError"]) == ("waiting", None)
    parent_id = uuid.UUID(keys["parent"])
    await handlers.started[parent_id].wait()
    handlers.gates[parent_id].set()
    await wait_for_flow(service, created["id"], "completed")
    assert handlers.calls[uuid.UUID(keys["child"])] == [1]
    assert handlers.calls[uuid.UUID(keys["grandchild"])] == [1]


async def test_cancelling_a_flow_cancels_every_unfinished_member(service: Service) -> None:
    steps = [{"type": "returns", "payload": {"value": 1}}, {"type": "cooperative"}]
    steps += [{"type": "returns"}] * 2
    created = await create_flow(service, {"steps": steps})
    keys = {key: job["id"] for key, job in by_key(created).items()}
    await handlers.started[uuid.UUID(keys["1"])].wait()
    response = await service.client.post(f"/api/flows/{created['id']}/cancel")
    assert response.status_code == 200, response.text
    statuses = {job["id"]: job["status"] for job in response.json()["jobs"]}
    assert [statuses[keys[str(n)]] for n in range(4)] == ["completed"] + ["cancelled"] * 3
    assert response.json()["status"] == "cancelled"
    assert handlers.calls[uuid.UUID(keys["2"])] == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {
                "jobs": [
                    {"key": "a", "type": "noop", "dependsOn": ["b"]},
                    {"key": "b", "type": "noop", "dependsOn": ["a"]},
                ]
            },
            "the flow has a cycle through steps a, b",
        ),
        ({"jobs": [{"key": "a", "type": "noop", "dependsOn": ["zz"]}]}, "unknown step 'zz'"),
        ({"jobs": [{"key": "a", "type": "noop", "dependsOn": ["a"]}]}, "depends on itself"),
        ({"steps": []}, "steps: List should have at least 1 item"),
        ({"steps": [{"type": "noop"}], "jobs": [{"key": "a", "type": "noop"}]}, "give one of"),
    ],
)
async def test_flows_that_cannot_run_are_refused(
    service: Service, body: dict[str, Any], message: str
) -> None:
    response = await service.client.post("/api/flows", json=body)
    assert response.status_code == 400, response.text
    assert message in response.json()["message"]
    assert (await service.client.get("/api/jobs")).json() == []


async def test_unknown_parents_are_refused_and_unknown_flows_are_404(service: Service) -> None:
    missing = str(uuid.uuid4())
    response = await service.client.post("/api/jobs", json={"type": "noop", "dependsOn": [missing]})
    assert response.status_code == 400
    assert response.json()["message"] == f"dependsOn names jobs that do not exist: {missing}"
    assert (await service.client.get("/api/jobs")).json() == []
    absent = await service.client.get(f"/api/flows/{missing}")
    assert (absent.status_code, absent.json()["message"]) == (404, "Flow not found")


async def test_a_child_released_by_a_crash_before_its_publish_still_runs(
    redis_mode: RedisMode,
) -> None:
    """Redis mode: the parent's completion commits, the process stops before the child is
    put on BullMQ; the reconciler finds the pending child and it runs, once."""
    settings = redis_mode.settings()
    async with running_service(settings, worker=False) as api:
        created = await create_flow(api, {"steps": [{"type": "noop"}, {"type": "fan-in"}]})
        keys = {key: job["id"] for key, job in by_key(created).items()}
        store = api.runtime.store
        [parent] = await store.claim("crashed-worker", 1, utcnow().replace(year=2999))
        attempt = attempt_of(parent, Succeeded(None), utcnow())
        assert await store.complete(parent, attempt, None) is not None  # and no publish
        child = (await api.client.get(f"/api/jobs/{keys['1']}")).json()
        assert child["status"] == "pending"
    async with running_service(settings) as worker:
        done = await worker.wait_for(keys["1"], "completed", timeout=15)
        assert handlers.calls[uuid.UUID(keys["1"])] == [1]
        assert done["attempts"] == 1


@pytest.mark.parametrize("end", ["delete", "cancel"])
async def test_jobs_a_removed_parent_releases_start_at_once(
    database_url: str, tmp_path: Path, end: str
) -> None:
    """A parent deleted, or cancelled (and its cancelled child after it), releases the jobs
    that continue; they start at once, not at an idle worker's next look (table modes) or the
    reconciler's next round (Redis mode): both a minute away here."""
    slow = {"job_poll_interval_ms": 60_000, "reconcile_interval_ms": 60_000}
    async with running_service(make_settings(database_url, tmp_path, **slow)) as service:
        later = (utcnow() + timedelta(hours=1)).isoformat()
        jobs = [
            {"key": "parent", "type": "returns", "runAt": later},
            {"key": "child", "type": "returns", "dependsOn": ["parent"]},
            {
                "key": "direct",
                "type": "fan-in",
                "dependsOn": ["parent"],
                "onParentFailure": "continue",
            },
            {
                "key": "deeper",
                "type": "fan-in",
                "dependsOn": ["child"],
                "onParentFailure": "continue",
            },
        ]
        keys = {
            key: job["id"]
            for key, job in by_key(await create_flow(service, {"jobs": jobs})).items()
        }
        if end == "delete":
            response = await service.client.delete(f"/api/jobs/{keys['parent']}")
        else:
            response = await service.client.post(f"/api/jobs/{keys['parent']}/cancel")
        assert response.status_code in (200, 204), response.text
        # A deleted parent's edges go with it; a cancelled one's stay, with no result.
        expected = {"direct": 0 if end == "delete" else 1, "deeper": 1}
        for key, parents in expected.items():
            done = await service.wait_for(keys[key], "completed", timeout=10)
            assert done["result"] == {"parents": parents, "sum": 0}


async def test_retention_keeps_a_parent_until_its_children_have_finished(
    service: Service,
) -> None:
    later = (utcnow() + timedelta(hours=1)).isoformat()
    jobs = [
        {"key": "early", "type": "returns", "payload": {"value": 5}},
        {"key": "late", "type": "returns", "runAt": later},
        {
            "key": "child",
            "type": "fan-in",
            "dependsOn": ["early", "late"],
            "onParentFailure": "continue",
        },
    ]
    keys = {
        key: job["id"] for key, job in by_key(await create_flow(service, {"jobs": jobs})).items()
    }
    await service.wait_for(keys["early"], "completed")
    prune = service.runtime.service.prune
    assert await prune(timedelta(0)) == 0  # "child" still waits to read its result
    assert (await service.client.delete(f"/api/jobs/{keys['late']}")).status_code == 204
    child = await service.wait_for(keys["child"], "completed")
    assert child["result"] == {"parents": 1, "sum": 5}
    assert await prune(timedelta(0)) == 2  # "early", and "child" itself
    assert (await service.client.get(f"/api/jobs/{keys['early']}")).status_code == 404
