"""The client's wire mapping of workflows without I/O: dependencies sent, flows and the
workflow fields of a job parsed from what the server's own serializers write."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from jobqueue.api.flow_routes import flow_json
from jobqueue.api.responses import job_json
from jobqueue.client import (
    FlowStatus,
    JobSpec,
    OnParentFailure,
    ProtocolError,
    Stats,
    calls,
    chain,
    chord,
    job,
)
from jobqueue.client.canvas import request_body
from jobqueue.domain.flows import Edge
from jobqueue.domain.jobs import JobStatus
from tests.unit.factories import body_of, make_job, wire


def test_a_waiting_job_in_a_flow_parses_with_its_workflow_fields() -> None:
    flow_id = uuid4()
    waiting = make_job(
        JobStatus.WAITING,
        pending_parents=2,
        on_parent_failure=OnParentFailure.CONTINUE,
        flow_id=flow_id,
    )
    parsed = calls.get(waiting.id).parse(wire(job_json(waiting)))
    assert (parsed.status, parsed.pending_parents) == (JobStatus.WAITING, 2)
    assert (parsed.on_parent_failure, parsed.flow_id) == ("continue", flow_id)


def test_a_job_from_a_server_without_workflows_has_none_of_their_fields() -> None:
    data = wire(job_json(make_job()))
    for key in ("pendingParents", "onParentFailure", "flowId"):
        del data[key]
    parsed = calls.get(data["id"]).parse(data)
    assert (parsed.pending_parents, parsed.on_parent_failure, parsed.flow_id) == (None, None, None)


def test_stats_count_waiting_jobs_and_default_to_none_without_workflows() -> None:
    counts = {"pending": 1, "processing": 2, "completed": 3, "failed": 4, "cancelled": 5}
    assert calls.stats().parse({**counts, "waiting": 6}).waiting == 6
    assert calls.stats().parse({**counts, "waiting": 6}).total == 21
    assert calls.stats().parse(counts).waiting == 0
    assert Stats(1, 2, 3, 4, 5, waiting=6).total == 21


def test_a_dependant_is_created_with_its_parents_ids_and_policy() -> None:
    parents: list[UUID | str] = [uuid4(), str(uuid4())]
    spec = JobSpec("report", depends_on=parents, on_parent_failure=OnParentFailure.CONTINUE)
    body = body_of(calls.create(spec))
    assert body["dependsOn"] == [str(parent) for parent in parents]
    assert body["onParentFailure"] == "continue"
    assert "dependsOn" not in body_of(calls.create(JobSpec("report")))
    batch = body_of(calls.create_many([JobSpec("report", depends_on=parents)]))
    assert batch["jobs"][0]["dependsOn"] == [str(parent) for parent in parents]


def test_one_parent_id_not_in_a_list_is_refused_before_sending() -> None:
    with pytest.raises(TypeError, match="a list of job ids"):
        JobSpec("report", depends_on=str(uuid4()))


def test_a_flow_as_the_server_writes_it_parses_with_members_keys_and_parents() -> None:
    parent = make_job(JobStatus.COMPLETED, result={"n": 1}, flow_key="0")
    child = make_job(JobStatus.WAITING, pending_parents=1, flow_key="1")
    answer = flow_json(uuid4(), [parent, child], [Edge(child.id, parent.id)])
    flow = calls.get_flow(uuid4()).parse(wire(answer))
    assert (flow.id, flow.status) == (answer["id"], FlowStatus.ACTIVE)
    assert (flow.counts["completed"], flow.counts["waiting"], flow.counts["failed"]) == (1, 1, 0)
    assert flow.member("0").result == {"n": 1}
    assert flow.member("0").depends_on == ()
    assert flow.member("1").depends_on == (parent.id,)
    assert flow.member_by_id(str(child.id)).key == "1"
    with pytest.raises(KeyError, match="no member with key '9'"):
        flow.member("9")
    with pytest.raises(KeyError, match="is not a member"):
        flow.member_by_id(uuid4())


def test_a_flow_member_with_a_bad_parent_id_is_a_protocol_error() -> None:
    member = wire(flow_json(uuid4(), [make_job()], []))
    member["jobs"][0]["dependsOn"] = ["not-a-uuid"]
    with pytest.raises(ProtocolError, match="'dependsOn' is not valid"):
        calls.get_flow(uuid4()).parse(member)
    member["jobs"][0]["dependsOn"] = [7]
    with pytest.raises(ProtocolError, match="'dependsOn' holds something not a string"):
        calls.get_flow(uuid4()).parse(member)


def test_create_flow_sends_a_canvas_as_its_graph_or_a_body_as_given() -> None:
    canvas = chord([job("send", {"to": "a"}), job("send", {"to": "b"})], job("report"))
    call = calls.create_flow(request_body(canvas))
    assert (call.method, call.path) == ("POST", "/api/flows")
    assert [item["dependsOn"] for item in body_of(call)["jobs"]] == [[], [], ["0", "1"]]
    steps = {"steps": [{"type": "resize"}, {"type": "index"}]}
    assert body_of(calls.create_flow(request_body(steps))) == steps
    with pytest.raises(TypeError, match="not list"):
        calls.create_flow([job("send")])  # type: ignore[arg-type]


def test_a_canvas_job_that_continues_says_so_and_one_that_cancels_sends_the_default() -> None:
    body = request_body(chain(job("a"), job("b", on_parent_failure="continue")))
    assert ["onParentFailure" in item for item in body["jobs"]] == [False, True]
    assert body["jobs"][1]["onParentFailure"] == "continue"


def test_only_flow_reads_and_cancels_are_repeatable_and_ids_are_escaped() -> None:
    assert not calls.create_flow({"steps": [{"type": "a"}]}).repeatable
    assert calls.get_flow(uuid4()).repeatable
    cancel = calls.cancel_flow("../x")
    assert (cancel.method, cancel.path, cancel.repeatable) == (
        "POST",
        "/api/flows/..%2Fx/cancel",
        True,
    )
    assert calls.get_flow(UUID(int=1)).path == f"/api/flows/{UUID(int=1)}"
