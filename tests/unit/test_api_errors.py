"""The error contract's table: which status each error type gets, most specific first."""

from __future__ import annotations

import uuid

import pytest

from jobqueue.api.errors import DATABASE_DOWN, ERROR_ANSWERS, UNEXPECTED, answer_for
from jobqueue.domain.errors import (
    DependencyUnavailableError,
    InvalidJobError,
    InvalidTransitionError,
    JobNotFoundError,
    JobQueueError,
    RetryNotAllowedError,
    UnknownJobTypeError,
)
from jobqueue.store.base import (
    DuplicateIdempotencyKeyError,
    StoreError,
    StoreUnavailableError,
)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (JobNotFoundError(uuid.uuid4()), 404),
        (InvalidJobError("bad"), 400),
        (UnknownJobTypeError("x", ["noop"]), 400),
        (InvalidTransitionError("no"), 409),
        (RetryNotAllowedError("only failed"), 400),
        (DependencyUnavailableError("redis"), 503),
        (StoreUnavailableError("refused"), 503),
        (TimeoutError(), 503),
        (ConnectionRefusedError(), 503),
        (OSError("network unreachable"), 503),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_each_error_type_has_its_status(error: Exception, status: int) -> None:
    assert answer_for(error).status == status


def test_a_subclass_gets_its_own_entry_not_its_bases() -> None:
    # RetryNotAllowedError is an InvalidTransitionError (409) but answers 400, wherever it
    # stands in the table.
    assert issubclass(RetryNotAllowedError, InvalidTransitionError)
    assert answer_for(RetryNotAllowedError("x")).status == 400


def test_a_subclass_without_an_entry_gets_its_nearest_base() -> None:
    class GoneError(JobNotFoundError):
        pass

    assert answer_for(GoneError(uuid.uuid4())).status == 404


@pytest.mark.parametrize(
    "error",
    [ValueError("x"), KeyError("k"), StoreError("x"), DuplicateIdempotencyKeyError("k")],
    ids=lambda value: type(value).__name__,
)
def test_what_the_table_does_not_know_is_500_without_its_words(error: Exception) -> None:
    answer = answer_for(error)
    assert answer is UNEXPECTED
    assert (answer.status, answer.message) == (500, "Internal Server Error")


def test_the_databases_words_never_reach_the_client() -> None:
    for error_type in (StoreUnavailableError, TimeoutError, OSError):
        assert ERROR_ANSWERS[error_type].message == DATABASE_DOWN


def test_domain_errors_speak_for_themselves() -> None:
    for error_type, answer in ERROR_ANSWERS.items():
        if issubclass(error_type, JobQueueError):
            assert answer.message is None, error_type
