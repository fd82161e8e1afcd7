"""The /api routes: the Node service's eight endpoints and this service's additions."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from jobqueue.api.limits import require_api_key, require_json
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
    dependencies=[Depends(require_api_key)],
    responses={400: {"model": ErrorOut}, 401: {"model": ErrorOut}, 503: {"model": ErrorOut}},
)
_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut}}
_CONFLICT: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut}, 409: {"model": ErrorOut}}


def get_service(request: Request) -> JobService:
    """The service the application was built with."""
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
) -> JSONResponse | JobOut:
    """Create a job; a repeated idempotency key answers 200 with the first job."""
    job, created = await service.create(body.to_new_job(idempotency_key))
    out = JobOut.of(job)
    if created:
        return out
    return JSONResponse(out.model_dump(mode="json", by_alias=True), status_code=200)


@router.post("/jobs/batch", status_code=201, response_model=list[JobOut], dependencies=JsonBody)
async def create_jobs(body: BatchBody, service: Service) -> list[JobOut]:
    """Create up to 1,000 jobs in one transaction."""
    results = await service.create_many([item.to_new_job() for item in body.jobs])
    return [JobOut.of(job) for job, _created in results]


@router.get("/jobs", response_model=list[JobOut])
async def list_jobs(
    service: Service,
    status: JobStatus | None = None,
    type: Annotated[str | None, Query(max_length=100)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[JobOut]:
    """Jobs, newest first, filtered by status and type."""
    jobs = await service.list_jobs(JobFilter(status, type, limit, offset))
    return [JobOut.of(job) for job in jobs]


@router.get("/jobs/stats")
async def job_stats(service: Service) -> dict[str, int]:
    """How many jobs are in each status."""
    return await service.stats()


@router.get("/jobs/{id}", response_model=JobOut, responses=_FOUND)
async def get_job(job_id: JobId, service: Service) -> JobOut:
    """One job."""
    return JobOut.of(await service.get(job_id))


@router.post("/jobs/{id}/retry", response_model=JobOut, responses=_FOUND)
async def retry_job(job_id: JobId, service: Service) -> JobOut:
    """Send a failed job back to pending, attempts reset (400 from any other status)."""
    return JobOut.of(await service.retry(job_id))


@router.post("/jobs/{id}/cancel", response_model=JobOut, responses=_CONFLICT)
async def cancel_job(job_id: JobId, service: Service) -> JobOut:
    """Cancel a pending job (409 from any other status)."""
    return JobOut.of(await service.cancel(job_id))


@router.patch("/jobs/{id}", response_model=JobOut, responses=_CONFLICT, dependencies=JsonBody)
async def update_job(job_id: JobId, body: UpdateJobBody, service: Service) -> JobOut:
    """Change status, attempts or nextRunAt; the queue follows the row."""
    return JobOut.of(await service.update(job_id, body.to_changes()))


@router.delete("/jobs/{id}", status_code=204, responses=_FOUND)
async def delete_job(job_id: JobId, service: Service) -> Response:
    """Delete a job and its queued trigger."""
    await service.delete(job_id)
    return Response(status_code=204)


@router.get("/dlq", response_model=list[DeadLetterOut])
async def dead_letters(
    service: Service, limit: Limit = 100, offset: Offset = 0
) -> list[DeadLetterOut]:
    """Jobs that failed for good, newest first."""
    return [DeadLetterOut.of(entry) for entry in await service.dead_letters(limit, offset)]
