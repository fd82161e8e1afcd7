"""The options a BullMQ job is added with: our retry rule, said in BullMQ's words."""

from __future__ import annotations

from jobqueue.domain.retry import Backoff, RetryPolicy
from jobqueue.queue.bullmq_wire import job_options
from tests.unit.factories import make_job


def test_bullmq_retries_as_the_jobs_type_says() -> None:
    job = make_job(max_attempts=3)
    exponential = job_options(job, RetryPolicy(5, 2000))
    fixed = job_options(job, RetryPolicy(2, 250, Backoff.FIXED))
    assert exponential["backoff"] == {"type": "exponential", "delay": 2000}
    assert fixed["backoff"] == {"type": "fixed", "delay": 250}
    assert exponential["attempts"] == fixed["attempts"] == 3  # the row's limit, always
    assert exponential["jobId"] == str(job.id)
