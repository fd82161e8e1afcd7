"""Request and response bodies of the HTTP API, in the Node service's camelCase."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)
from pydantic.alias_generators import to_camel

from jobqueue.domain.attempts import AttemptOutcome
from jobqueue.domain.changes import JobChanges
from jobqueue.domain.flows import MAX_PARENTS
from jobqueue.domain.jobs import (
    JobStatus,
    NewJob,
    OnParentFailure,
    iso_ms,
    request_fingerprint,
    utcnow,
)
from jobqueue.domain.json_values import NUL_CHARACTER, holds_nul

Timestamp = Annotated[datetime, PlainSerializer(iso_ms, return_type=str)]


def _storable(text: str) -> str:
    if holds_nul(text):
        raise ValueError(NUL_CHARACTER)
    return text


StorableText = Annotated[str, AfterValidator(_storable)]
"""A string every store can hold: PostgreSQL's text refuses U+0000."""


JobTypeName = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_storable)]
"""A job type as a filter names it (the length limits checked first, as for any string)."""


class CamelModel(BaseModel):
    """camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class CreateJobBody(CamelModel):
    """POST /api/jobs."""

    type: StorableText = Field(
        min_length=1, max_length=100, description="Job type: a registered handler"
    )
    payload: dict[str, Any] = Field(default_factory=dict, description="Handler input")
    run_at: AwareDatetime | None = Field(default=None, description="Run no earlier than this")
    delay_ms: int | None = Field(default=None, ge=0, le=366 * 86_400_000, description="Delay")
    priority: int = Field(default=0, ge=-1_000_000, le=1_000_000, description="Lower runs first")
    max_attempts: int | None = Field(default=None, ge=1, le=100, description="Attempts limit")
    idempotency_key: StorableText | None = Field(default=None, min_length=1, max_length=255)
    depends_on: list[UUID] = Field(
        default_factory=list,
        max_length=MAX_PARENTS,
        description="Jobs that must complete first: this one waits (status waiting) until then",
        examples=[["550e8400-e29b-41d4-a716-446655440000"]],
    )
    on_parent_failure: OnParentFailure = Field(
        default=OnParentFailure.CANCEL,
        description="When a job it depends on fails for good or is cancelled: cancel this one "
        "too (naming that job), or continue and run it anyway",
    )

    @model_validator(mode="after")
    def _one_schedule(self) -> CreateJobBody:
        if self.run_at is not None and self.delay_ms is not None:
            raise ValueError("give runAt or delayMs, not both")
        return self

    def to_new_job(self, idempotency_header: str | None = None) -> NewJob:
        """The domain request; the Idempotency-Key header wins over the body field."""
        run_at = self.run_at
        if self.delay_ms is not None:
            run_at = utcnow() + timedelta(milliseconds=self.delay_ms)
        key = idempotency_header or self.idempotency_key
        return NewJob(
            type=self.type,
            payload=self.payload,
            run_at=run_at,
            priority=self.priority,
            max_attempts=self.max_attempts,
            idempotency_key=key,
            request_fingerprint=None if key is None else self._fingerprint(),
            depends_on=tuple(self.depends_on),
            on_parent_failure=self.on_parent_failure,
        )

    def _fingerprint(self) -> str:
        """The request as sent, defaults filled in (``delayMs``, not the time it gives).
        The workflow fields count only when given, so that requests made before they existed
        keep their fingerprints."""
        left_out = {"idempotency_key"}
        if not self.depends_on:
            left_out.add("depends_on")
        if self.on_parent_failure is OnParentFailure.CANCEL:
            left_out.add("on_parent_failure")
        return request_fingerprint(self.model_dump(mode="json", exclude=left_out))


class BatchBody(CamelModel):
    """POST /api/jobs/batch."""

    jobs: list[CreateJobBody] = Field(min_length=1, max_length=1000)


class RetryFailedBody(CamelModel):
    """POST /api/jobs/retry-failed: which failed jobs; an empty body or ``{}`` means all."""

    model_config = ConfigDict(extra="forbid")

    type: JobTypeName | None = Field(
        default=None, description="Retry only the failed jobs of this type; absent or null: all"
    )


class UpdateJobBody(CamelModel):
    """PATCH /api/jobs/:id: the Node service's fields."""

    status: JobStatus | None = None
    attempts: int | None = Field(default=None, ge=0, le=100)
    next_run_at: AwareDatetime | None = None

    def to_changes(self) -> JobChanges:
        """The domain change; tells an explicit ``nextRunAt: null`` from an absent one."""
        return JobChanges(
            status=self.status,
            attempts=self.attempts,
            next_run_at=self.next_run_at,
            next_run_at_given="next_run_at" in self.model_fields_set,
        )


# JobOut and DeadLetterOut only document the answers in OpenAPI (their docstrings show in
# /docs); responses.py writes the bodies.
class JobOut(CamelModel):
    """A job as the API returns it."""

    id: UUID
    type: str
    payload: dict[str, Any]
    status: JobStatus
    attempts: int
    next_run_at: Timestamp | None
    created_at: Timestamp
    updated_at: Timestamp
    max_attempts: int
    priority: int
    last_error: str | None
    result: Any = Field(None, description="What the handler returned, once completed")
    progress: int | None = Field(None, description="0 to 100, as the running attempt reported")
    progress_message: str | None = Field(None, description="What came with that report")
    pending_parents: int | None = Field(
        None, description="Jobs it still waits for (null: it depends on none)"
    )
    on_parent_failure: OnParentFailure = Field(
        OnParentFailure.CANCEL, description="What it does when a job it depends on fails"
    )
    flow_id: UUID | None = Field(None, description="The flow it was created in, if any")


class RetriedOut(BaseModel):
    """What retry-failed did."""

    retried: int = Field(description="Failed jobs sent back to pending by this call")


class AttemptOut(CamelModel):
    """One finished attempt of a job."""

    number: int = Field(description="1 for the first attempt")
    worker: str | None = Field(description="The worker that ran it: host, process, random part")
    started_at: Timestamp
    finished_at: Timestamp
    outcome: AttemptOutcome
    error: str | None
    duration_ms: float | None = Field(description="The handler's run time; null when lost")


class ScheduleOut(CamelModel):
    """A recurring job: its type, when (cron, UTC), with what payload, and its next run."""

    type: str
    cron: str
    payload: dict[str, Any]
    next_run_at: Timestamp


class DeadLetterOut(CamelModel):
    """A dead-letter entry: the Node service's DLQ job data."""

    job_id: UUID
    type: str
    payload: dict[str, Any]
    reason: str
    attempts: int
    failed_at: Timestamp


class ErrorOut(BaseModel):
    """Every error answer: the Node service's (Fastify's) shape."""

    statusCode: int  # noqa: N815 - the wire name
    error: str
    message: str
