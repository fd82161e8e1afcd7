"""``Client``: the blocking client. It only sends ``calls`` and waits between retries."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, TypeVar

import httpx

from jobqueue.client import calls
from jobqueue.client.calls import (
    AUTO,
    UNSET,
    Call,
    FlowId,
    IdempotencyKey,
    JobId,
    JobSpec,
    ParentFailure,
    Unset,
)
from jobqueue.client.canvas import FlowRequest, request_body
from jobqueue.client.connection import Connection
from jobqueue.client.models import Attempt, DeadLetter, Flow, Job, JobStatus, Schedule, Stats
from jobqueue.client.paging import Pager
from jobqueue.client.retrying import RetryState

T = TypeVar("T")


class Client:
    """A blocking client of the jobqueue HTTP API; use it as a context manager, or ``close``.

    Arguments left None come from ``JOBQUEUE_URL``, ``JOBQUEUE_API_KEY``, ``JOBQUEUE_TIMEOUT``
    and ``JOBQUEUE_RETRIES`` (environment or ``.env``), else http://127.0.0.1:3000, no key,
    10 s and 3. ``transport`` replaces httpx's (for tests, or a custom network stack).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        backoff: float = 0.2,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """Opens nothing yet: connections are made by the first call and then reused."""
        self.connection = Connection.resolve(url, api_key, timeout, retries, backoff)
        self._http = httpx.Client(
            base_url=self.connection.url,
            headers=self.connection.headers,
            timeout=self.connection.timeout,
            transport=transport,
        )

    @property
    def url(self) -> str:
        """The server's base URL."""
        return self.connection.url

    def create(
        self,
        type: str,
        payload: Mapping[str, Any] | None = None,
        *,
        run_at: datetime | None = None,
        delay: timedelta | None = None,
        priority: int | None = None,
        max_attempts: int | None = None,
        idempotency_key: IdempotencyKey = AUTO,
        depends_on: Sequence[JobId] = (),
        on_parent_failure: ParentFailure | None = None,
    ) -> Job:
        """Create a job of ``type``; with the same idempotency key again, the first job.
        With ``depends_on`` it is ``waiting`` until those jobs have completed."""
        spec = JobSpec(
            type,
            payload or {},
            run_at,
            delay,
            priority,
            max_attempts,
            idempotency_key,
            depends_on,
            on_parent_failure,
        )
        return self._send(calls.create(spec))

    def create_many(self, jobs: Sequence[JobSpec]) -> list[Job]:
        """Create up to 1,000 jobs in one transaction, in order."""
        return self._send(calls.create_many(jobs))

    def create_flow(self, flow: FlowRequest) -> Flow:
        """Create every job of ``flow`` (a ``chain``/``group``/``chord``/``job`` canvas, or a
        ``POST /api/flows`` body), with what each waits for, in one transaction. Sent again
        only when the request never left: the API has no idempotency key for flows."""
        return self._send(calls.create_flow(request_body(flow)))

    def get_flow(self, flow_id: FlowId) -> Flow:
        """A flow with each member's status and result (``NotFoundError`` when absent)."""
        return self._send(calls.get_flow(flow_id))

    def cancel_flow(self, flow_id: FlowId) -> Flow:
        """Cancel every member of the flow not yet finished; the flow as it is then."""
        return self._send(calls.cancel_flow(flow_id))

    def get(self, job_id: JobId) -> Job:
        """One job (``NotFoundError`` when absent)."""
        return self._send(calls.get(job_id))

    def list_jobs(
        self,
        status: JobStatus | str | None = None,
        type: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Job]:
        """One page of jobs, newest first, filtered by status and type."""
        return self._send(calls.list_jobs(status, type, limit, offset))

    def iter_jobs(
        self,
        status: JobStatus | str | None = None,
        type: str | None = None,
        page_size: int = 100,
    ) -> Iterator[Job]:
        """Every job that matches, newest first, reading a page at a time."""
        pager: Pager[Job] = Pager(
            lambda limit, offset: calls.list_jobs(status, type, limit, offset),
            lambda job: job.id,
            page_size,
        )
        return self._walk(pager)

    def stats(self) -> Stats:
        """How many jobs are in each status."""
        return self._send(calls.stats())

    def attempts(self, job_id: JobId) -> list[Attempt]:
        """A job's finished attempts, first to last."""
        return self._send(calls.attempts(job_id))

    def retry(self, job_id: JobId) -> Job:
        """Send a failed job back to pending (``BadRequestError`` from any other status)."""
        return self._send(calls.retry(job_id))

    def cancel(self, job_id: JobId) -> Job:
        """Cancel a pending or running job (``ConflictError`` once it has finished)."""
        return self._send(calls.cancel(job_id))

    def delete(self, job_id: JobId) -> None:
        """Delete a job and its queued trigger."""
        self._send(calls.delete(job_id))

    def update(
        self,
        job_id: JobId,
        *,
        status: JobStatus | str | None = None,
        attempts: int | None = None,
        next_run_at: datetime | Unset | None = UNSET,
    ) -> Job:
        """Change a job's status, attempts or next run (``ConflictError`` when not allowed)."""
        return self._send(calls.update(job_id, status, attempts, next_run_at))

    def dead_letters(self, limit: int = 100, offset: int = 0) -> list[DeadLetter]:
        """One page of the dead-letter queue, newest first."""
        return self._send(calls.dead_letters(limit, offset))

    def iter_dead_letters(self, page_size: int = 100) -> Iterator[DeadLetter]:
        """Every dead-letter entry, newest first, reading a page at a time."""
        pager: Pager[DeadLetter] = Pager(calls.dead_letters, lambda e: e.job_id, page_size)
        return self._walk(pager)

    def schedules(self) -> list[Schedule]:
        """The recurring jobs with their next runs."""
        return self._send(calls.schedules())

    def retry_failed(self, type: str | None = None) -> int:
        """Send every failed job (of ``type``) back to pending; how many were."""
        return self._send(calls.retry_failed(type))

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _walk(self, pager: Pager[T]) -> Iterator[T]:
        while not pager.done:
            yield from pager.take(self._send(pager.next_call()))

    def _send(self, call: Call[T]) -> T:
        state = RetryState(self.connection.policy, call.repeatable)
        while True:
            try:
                response = self._http.request(
                    call.method,
                    call.path,
                    params=call.params,
                    content=call.body,
                    headers=call.request_headers(),
                )
            except httpx.TransportError as exc:
                delay = state.after_error(exc)
                if delay is None:
                    raise self.connection.unreachable(exc) from exc
            else:
                delay = state.after_status(response.status_code)
                if delay is None:
                    return calls.read_answer(call, response.status_code, response.content)
            time.sleep(delay)
