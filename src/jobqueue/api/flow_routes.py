"""The workflow routes: create a flow, read it, cancel it (``/api/flows``)."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any
from uuid import UUID

from fastapi import Body, Path, Request, Response

from jobqueue.api import examples as ex
from jobqueue.api.examples import answer, error_answer
from jobqueue.api.flow_schemas import CreateFlowBody, FlowOut
from jobqueue.api.responses import job_json, json_response
from jobqueue.api.routes import api_router, service_of
from jobqueue.domain.flows import Edge, flow_status
from jobqueue.domain.jobs import Job, JobStatus

router = api_router(tags=["flows"])
FlowId = Annotated[UUID, Path(alias="id", description="The flow's id")]
_FOUND: dict[int | str, dict[str, Any]] = {
    200: answer(ex.FLOW),
    404: error_answer(ex.FLOW_NOT_FOUND),
}


@router.post(
    "/flows",
    status_code=201,
    response_model=FlowOut,
    responses={201: answer({**ex.FLOW, "status": "active"})},
)
async def create_flow(
    body: Annotated[CreateFlowBody, Body(openapi_examples=ex.FLOW_BODIES)], request: Request
) -> Response:
    """Create every job of a flow, and what each waits for, in one transaction: a BullMQ
    tree (a job runs after its ``children``), a chain (``steps``) or a graph (``jobs`` with
    ``key`` and ``dependsOn``). 400 for a cycle, an unknown key or a flow too large. The
    answer shows each job as created, with its ``key``: ``0`` for a tree's root, ``0.1``
    for its second child; a chain's index; a graph's own key."""
    flow_id, by_key, edges = await service_of(request).create_flow(body.to_steps())
    return json_response(flow_json(flow_id, list(by_key.values()), edges), 201)


@router.get("/flows/{id}", response_model=FlowOut, responses=_FOUND)
async def get_flow(flow_id: FlowId, request: Request) -> Response:
    """A flow: its state, and each member's status, result and the jobs it waits for."""
    members, edges = await service_of(request).flow(flow_id)
    return json_response(flow_json(flow_id, members, edges))


@router.post("/flows/{id}/cancel", response_model=FlowOut, responses=_FOUND)
async def cancel_flow(flow_id: FlowId, request: Request) -> Response:
    """Cancel every member not yet finished (running ones are told to stop, as with a job's
    cancel); finished ones stay as they are."""
    members, edges = await service_of(request).cancel_flow(flow_id)
    return json_response(flow_json(flow_id, members, edges))


def flow_json(flow_id: UUID, members: list[Job], edges: list[Edge]) -> dict[str, Any]:
    """A flow on the wire (``FlowOut``)."""
    parents: dict[UUID, list[UUID]] = {}
    for edge in edges:
        parents.setdefault(edge.child_id, []).append(edge.parent_id)
    counts = Counter(job.status for job in members)
    jobs = []
    for job in members:
        member = {**job_json(job), "dependsOn": parents.get(job.id, [])}
        member["key"] = job.flow_key
        jobs.append(member)
    return {
        "id": flow_id,
        "status": flow_status(list(counts)),
        "counts": {status.value: counts.get(status, 0) for status in JobStatus},
        "jobs": jobs,
    }
