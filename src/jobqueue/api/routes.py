"""The /api routes: the Node service's eight endpoints and this service's additions.

Each route answers with the bytes ``responses`` builds from the domain objects; the
``response_model`` of a route only documents that shape in OpenAPI.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError

from jobqueue.api import examples as ex
from jobqueue.api.examples import answer, error_answer
from jobqueue.api.jsonbody import StrictJsonRoute
from jobqueue.api.responses import (
    attempt_json,
    dead_letter_json,
    job_json,
    json_response,
    schedule_json,
)
from jobqueue.api.schemas import (
    AttemptOut,
    BatchBody,
    CreateJobBody,
    DeadLetterOut,
    JobOut,
    RetriedOut,
    RetryFailedBody,
    ScheduleOut,
    StorableText,
    UpdateJobBody,
)
from jobqueue.domain.jobs import JobFilter, JobStatus
from jobqueue.service import JobService

Responses = dict[int | str, dict[str, Any]]


def api_router(**options: Any) -> APIRouter:
    """A router of /api routes: strict JSON bodies, and the errors any of them may answer."""
    errors: Responses = {
        400: error_answer(ex.BAD_REQUEST),
        401: error_answer(ex.UNAUTHORIZED),
        503: error_answer(ex.UNAVAILABLE),
    }
    return APIRouter(prefix="/api", route_class=StrictJsonRoute, responses=errors, **options)


router = api_router()
_NOT_FOUND = error_answer(ex.NOT_FOUND)
_KEY_TAKEN = error_answer(ex.KEY_TAKEN, "The idempotency key made a job of another request")


def _answers(status: int, example: Any, *errors: tuple[int, dict[str, Any]]) -> Responses:
    """A route's documented answers: its success with ``example``, and its own errors."""
    return {status: answer(example), **dict(errors)}


_CREATED = _answers(201, ex.NEW_JOB, (409, _KEY_TAKEN))
_CONFLICT = error_answer(ex.CONFLICT)
_CANNOT_CANCEL = error_answer(ex.CANNOT_CANCEL)

Limit = Annotated[int, Query(ge=1, le=500, description="Page size")]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="Entries to skip")]
JobId = Annotated[UUID, Path(alias="id", description="The job's id")]
MAX_KEY_LENGTH = 255
IDEMPOTENCY_KEY_DOC = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "The same request again answers 200 with the first job; another request with the "
        "key answers 409 (wins over idempotencyKey)"
    ),
    "schema": {"type": "string", "maxLength": MAX_KEY_LENGTH},
}


def service_of(request: Request) -> JobService:
    """The service the application was built with.

    Read from the request rather than injected with ``Depends``: FastAPI spends about
    10 us per request on each dependency it resolves.
    """
    service: JobService = request.app.state.service
    return service


def idempotency_key_of(request: Request) -> str | None:
    """The Idempotency-Key header, at most 255 characters.

    Read by hand and documented with ``openapi_extra``: as a declared ``Header`` parameter
    it cost FastAPI 13 us per create (of 83).
    """
    key = request.headers.get("idempotency-key")
    if key is not None and len(key) > MAX_KEY_LENGTH:
        too_long = f"String should have at most {MAX_KEY_LENGTH} characters"
        raise RequestValidationError([{"loc": ("header", "Idempotency-Key"), "msg": too_long}])
    return key


@router.post(
    "/jobs",
    status_code=201,
    response_model=JobOut,
    responses={
        **_CREATED,
        200: {"model": JobOut, **answer(ex.NEW_JOB, "The job this idempotency key made before")},
    },
    openapi_extra={"parameters": [IDEMPOTENCY_KEY_DOC]},
)
async def create_job(
    body: Annotated[CreateJobBody, Body(openapi_examples=ex.CREATE_BODIES)], request: Request
) -> Response:
    """Create a job; a repeated idempotency key answers 200 with the first job."""
    new_job = body.to_new_job(idempotency_key_of(request))
    job, created = await service_of(request).create(new_job)
    return json_response(job_json(job), 201 if created else 200)


@router.post(
    "/jobs/batch",
    status_code=201,
    response_model=list[JobOut],
    responses=_answers(201, [ex.NEW_JOB], (409, _KEY_TAKEN)),
)
async def create_jobs(
    body: Annotated[BatchBody, Body(openapi_examples=ex.BATCH_BODIES)], request: Request
) -> Response:
    """Create up to 1,000 jobs in one transaction."""
    results = await service_of(request).create_many([item.to_new_job() for item in body.jobs])
    return json_response([job_json(job) for job, _created in results], 201)


@router.get("/jobs", response_model=list[JobOut], responses=_answers(200, [ex.COMPLETED_JOB]))
async def list_jobs(
    request: Request,
    status: JobStatus | None = None,
    type: Annotated[StorableText | None, Query(max_length=100)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Response:
    """Jobs, newest first, filtered by status and type."""
    jobs = await service_of(request).list_jobs(JobFilter(status, type, limit, offset))
    return json_response([job_json(job) for job in jobs])


@router.get("/jobs/stats", response_model=dict[str, int], responses=_answers(200, ex.STATS))
async def job_stats(request: Request) -> Response:
    """How many jobs are in each status."""
    return json_response(await service_of(request).stats())


# Declared before the /jobs/{id} routes, as /jobs/stats is, so that no id pattern can take it.
@router.post("/jobs/retry-failed", response_model=RetriedOut, responses=_answers(200, ex.RETRIED))
async def retry_failed_jobs(
    request: Request,
    body: Annotated[RetryFailedBody | None, Body(openapi_examples=ex.RETRY_FAILED_BODIES)] = None,
) -> Response:
    """Send every failed job (of ``type``, if given) back to pending, attempts reset, as the
    retry of one job does; 500 per transaction. Calling it again retries only jobs that
    failed since."""
    job_type = None if body is None else body.type
    return json_response({"retried": await service_of(request).retry_failed(job_type)})


@router.get(
    "/jobs/{id}",
    response_model=JobOut,
    responses=_answers(200, ex.COMPLETED_JOB, (404, _NOT_FOUND)),
)
async def get_job(job_id: JobId, request: Request) -> Response:
    """One job."""
    return json_response(job_json(await service_of(request).get(job_id)))


@router.get(
    "/jobs/{id}/attempts",
    response_model=list[AttemptOut],
    responses=_answers(200, ex.ATTEMPTS, (404, _NOT_FOUND)),
)
async def job_attempts(job_id: JobId, request: Request) -> Response:
    """Every finished attempt of a job, first to last: who ran it, when, how it ended."""
    history = await service_of(request).attempts(job_id)
    return json_response([attempt_json(attempt) for attempt in history])


@router.post(
    "/jobs/{id}/retry",
    response_model=JobOut,
    responses=_answers(200, ex.RETRIED_JOB, (404, _NOT_FOUND)),
)
async def retry_job(job_id: JobId, request: Request) -> Response:
    """Send a failed job back to pending, attempts reset (400 from any other status)."""
    return json_response(job_json(await service_of(request).retry(job_id)))


@router.post(
    "/jobs/{id}/cancel",
    response_model=JobOut,
    responses=_answers(200, ex.CANCELLED_JOB, (404, _NOT_FOUND), (409, _CANNOT_CANCEL)),
)
async def cancel_job(job_id: JobId, request: Request) -> Response:
    """Cancel a pending or running job (409 once it has finished); a running one's handler is
    told and, after JOB_CANCEL_GRACE_MS, stopped."""
    return json_response(job_json(await service_of(request).cancel(job_id)))


@router.patch(
    "/jobs/{id}",
    response_model=JobOut,
    responses=_answers(200, ex.RETRIED_JOB, (404, _NOT_FOUND), (409, _CONFLICT)),
)
async def update_job(
    job_id: JobId,
    body: Annotated[UpdateJobBody, Body(openapi_examples=ex.UPDATE_BODIES)],
    request: Request,
) -> Response:
    """Change status, attempts or nextRunAt; the queue follows the row."""
    return json_response(job_json(await service_of(request).update(job_id, body.to_changes())))


@router.delete("/jobs/{id}", status_code=204, responses={404: _NOT_FOUND})
async def delete_job(job_id: JobId, request: Request) -> Response:
    """Delete a job and its queued trigger."""
    await service_of(request).delete(job_id)
    return Response(status_code=204)


@router.get("/schedules", response_model=list[ScheduleOut], responses=_answers(200, ex.SCHEDULES))
async def schedules(request: Request) -> Response:
    """Recurring jobs (``@handler(cron=...)`` and SCHEDULES) with their next run."""
    runs = service_of(request).next_runs()
    return json_response([schedule_json(schedule, at) for schedule, at in runs])


@router.get("/dlq", response_model=list[DeadLetterOut], responses=_answers(200, ex.DEAD_LETTERS))
async def dead_letters(request: Request, limit: Limit = 100, offset: Offset = 0) -> Response:
    """Jobs that failed for good, newest first."""
    entries = await service_of(request).dead_letters(limit, offset)
    return json_response([dead_letter_json(entry) for entry in entries])
