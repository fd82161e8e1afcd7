"""Which PATCH, retry and cancel requests each state allows, and what the queue must do."""

from __future__ import annotations

import pytest

from jobqueue.domain.changes import (
    JobChanges,
    QueueAction,
    plan_cancel,
    plan_retry,
    plan_update,
)
from jobqueue.domain.errors import InvalidJobError, InvalidTransitionError, RetryNotAllowedError
from jobqueue.domain.jobs import JobStatus
from tests.unit.factories import T0, make_job

PENDING, PROCESSING, COMPLETED, FAILED, CANCELLED, WAITING = list(JobStatus)


def test_retry_resets_a_failed_job_and_enqueues_it() -> None:
    plan = plan_retry(make_job(FAILED, attempts=5, next_run_at=T0))
    assert (plan.status, plan.attempts, plan.next_run_at) == (PENDING, 0, None)
    assert plan.expected_status is FAILED
    assert plan.action is QueueAction.ENQUEUE


@pytest.mark.parametrize("status", [PENDING, PROCESSING, COMPLETED, CANCELLED, WAITING])
def test_retry_names_the_current_status_when_refused(status: JobStatus) -> None:
    with pytest.raises(RetryNotAllowedError, match=f"current status: {status.value}"):
        plan_retry(make_job(status))


def test_cancel_withdraws_a_pending_job() -> None:
    plan = plan_cancel(make_job(PENDING))
    assert (plan.status, plan.action) == (CANCELLED, QueueAction.WITHDRAW)


def test_cancel_of_a_running_job_leaves_its_trigger_to_its_worker() -> None:
    plan = plan_cancel(make_job(PROCESSING, attempts=2))
    assert (plan.expected_status, plan.status, plan.attempts) == (PROCESSING, CANCELLED, 2)
    assert plan.action is QueueAction.NONE  # the worker sees it and stops the handler


@pytest.mark.parametrize("status", [COMPLETED, FAILED, CANCELLED])
def test_only_unfinished_jobs_can_be_cancelled(status: JobStatus) -> None:
    with pytest.raises(InvalidTransitionError, match="Only pending, waiting or running jobs"):
        plan_cancel(make_job(status))


def test_cancel_of_a_waiting_job_has_no_trigger_to_withdraw() -> None:
    plan = plan_cancel(make_job(WAITING, pending_parents=1))
    assert (plan.expected_status, plan.status, plan.action) == (
        WAITING,
        CANCELLED,
        QueueAction.NONE,
    )
    assert plan_update(make_job(WAITING), JobChanges(status=CANCELLED)).status is CANCELLED


@pytest.mark.parametrize(
    "changes",
    [JobChanges(status=PENDING), JobChanges(attempts=1), JobChanges(next_run_at_given=True)],
)
def test_a_waiting_job_can_only_be_cancelled(changes: JobChanges) -> None:
    with pytest.raises(InvalidTransitionError, match="can only be cancelled"):
        plan_update(make_job(WAITING, pending_parents=1), changes)


def test_patch_status_pending_on_a_failed_job_is_a_retry() -> None:
    plan = plan_update(make_job(FAILED, attempts=5), JobChanges(status=PENDING))
    assert (plan.status, plan.attempts, plan.action) == (PENDING, 0, QueueAction.ENQUEUE)


def test_patch_may_reschedule_a_pending_job() -> None:
    changes = JobChanges(next_run_at=T0, next_run_at_given=True)
    plan = plan_update(make_job(PENDING, attempts=2), changes)
    assert (plan.next_run_at, plan.attempts, plan.action) == (T0, 2, QueueAction.ENQUEUE)


def test_patch_null_next_run_at_runs_a_scheduled_job_now() -> None:
    plan = plan_update(make_job(PENDING, next_run_at=T0), JobChanges(next_run_at_given=True))
    assert plan.next_run_at is None


def test_patch_cancelled_on_a_pending_job_cancels_it() -> None:
    plan = plan_update(make_job(PENDING), JobChanges(status=CANCELLED))
    assert plan.action is QueueAction.WITHDRAW


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (PENDING, PROCESSING),
        (PENDING, COMPLETED),
        (PENDING, FAILED),
        (FAILED, COMPLETED),
        (FAILED, CANCELLED),
        (PROCESSING, PENDING),
        (PROCESSING, FAILED),
        (COMPLETED, PENDING),
        (CANCELLED, PENDING),
    ],
)
def test_patch_refuses_transitions_the_queue_cannot_follow(
    current: JobStatus, target: JobStatus
) -> None:
    with pytest.raises(InvalidTransitionError):
        plan_update(make_job(current), JobChanges(status=target))


def test_patch_attempts_must_leave_a_pending_job_an_attempt() -> None:
    with pytest.raises(InvalidJobError, match="maxAttempts"):
        plan_update(make_job(PENDING, max_attempts=3), JobChanges(attempts=3))


def test_patch_with_no_field_is_invalid() -> None:
    with pytest.raises(InvalidJobError, match="at least one"):
        plan_update(make_job(PENDING), JobChanges())


def test_patch_attempts_on_a_failed_job_keeps_it_failed() -> None:
    plan = plan_update(make_job(FAILED, attempts=5), JobChanges(attempts=1))
    assert (plan.status, plan.attempts, plan.action) == (FAILED, 1, QueueAction.NONE)


def test_next_run_at_cannot_be_set_on_a_failed_job() -> None:
    with pytest.raises(InvalidTransitionError):
        plan_update(make_job(FAILED), JobChanges(next_run_at=T0, next_run_at_given=True))
