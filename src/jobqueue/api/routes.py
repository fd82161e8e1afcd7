"""The /api routes: the Node service's eight endpoints and this service's additions.

Each route answers with the bytes ``responses`` builds from the domain objects; the
``response_model`` of a route only documents that shape in OpenAPI.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response

from jobqueue.api.jsonbody import StrictJsonRoute
from jobqueue.api.limits import require_api_key, require_json
from jobqueue.api.responses import dead_letter_json, job_json, json_response
from jobqueue.api.schemas import (
    BatchBody,
    CreateJobBody,
    DeadLetterOut,
    ErrorOut,
    JobOut,
    UpdateJobBody,
)
from jobqueue.domain.jobs import JobFilter, JobStatus
from jobqueue.service import JobService

router = APIRouter(
    prefix="/api",
    route_class=StrictJsonRoute,
    dependencies=[Depends(require_api_key)],
    responses={400: {"model": ErrorOut}, 401: {"model": ErrorOut}, 503: {"model": ErrorOut}},
)
_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut}}
_CONFLICT: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut}, 409: {"model": ErrorOut}}


async def get_service(request: Request) -> JobService:
    """The service the application was built with (async: FastAPI runs a plain def in a thread)."""
    service: JobService = request.app.state.service
    return service


Service = Annotated[JobService, Depends(get_service)]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size")]
Offset = Annotated[int, Query(ge=0, description="Entries to skip")]
JobId = Annotated[UUID, Path(alias="id", description="The job's id")]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)]
JsonBody = [Depends(require_json)]


@router.post("/jobs", status_code=201, response_model=JobOut, dependencies=JsonBody)
async def create_job(
    body: CreateJobBody, service: Service, idempotency_key: IdempotencyKey = None
) -> Response:
    """Create a job; a repeated idempotency key answers 200 with the first job."""
    job, created = await service.create(body.to_new_job(idempotency_key))
    return json_response(job_json(job), 201 if created else 200)


@router.post("/jobs/batch", status_code=201, response_model=list[JobOut], dependencies=JsonBody)
async def create_jobs(body: BatchBody, service: Service) -> Response:
    """Create up to 1,000 jobs in one transaction."""
    results = await service.create_many([item.to_new_job() for item in body.jobs])
    return json_response([job_json(job) for job, _created in results], 201)


@router.get("/jobs", response_model=list[JobOut])
async def list_jobs(
    service: Service,
    status: JobStatus | None = None,
    type: Annotated[str | None, Query(max_length=100)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Response:
    """Jobs, newest first, filtered by status and type."""
    jobs = await service.list_jobs(JobFilter(status, type, limit, offset))
    return json_response([job_json(job) for job in jobs])


@router.get("/jobs/stats", response_model=dict[str, int])
async def job_stats(service: Service) -> Response:
    """How many jobs are in each status."""
    return json_response(await service.stats())


@router.get("/jobs/{id}", response_model=JobOut, responses=_FOUND)
async def get_job(job_id: JobId, service: Service) -> Response:
    """One job."""
    return json_response(job_json(await service.get(job_id)))


@router.post("/jobs/{id}/retry", response_model=JobOut, responses=_FOUND)
async def retry_job(job_id: JobId, service: Service) -> Response:
    """Send a failed job back to pending, attempts reset (400 from any other status)."""
    return json_response(job_json(await service.retry(job_id)))


@router.post("/jobs/{id}/cancel", response_model=JobOut, responses=_CONFLICT)
async def cancel_job(job_id: JobId, service: Service) -> Response:
    """Cancel a pending job (409 from any other status)."""
    return json_response(job_json(await service.cancel(job_id)))


@router.patch("/jobs/{id}", response_model=JobOut, responses=_CONFLICT, dependencies=JsonBody)
async def update_job(job_id: JobId, body: UpdateJobBody, service: Service) -> Response:
    """Change status, attempts or nextRunAt; the queue follows the row."""
    return json_response(job_json(await service.update(job_id, body.to_changes())))


@router.delete("/jobs/{id}", status_code=204, responses=_FOUND)
async def delete_job(job_id: JobId, service: Service) -> Response:
    """Delete a job and its queued trigger."""
    await service.delete(job_id)
    return Response(status_code=204)


@router.get("/dlq", response_model=list[DeadLetterOut])
async def dead_letters(service: Service, limit: Limit = 100, offset: Offset = 0) -> Response:
    """Jobs that failed for good, newest first."""
    entries = await service.dead_letters(limit, offset)
    return json_response([dead_letter_json(entry) for entry in entries])
