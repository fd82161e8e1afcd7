"""The log throttle: one line per interval and kind of complaint, the rest counted."""

from __future__ import annotations

from jobqueue.log_throttle import LogThrottle


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_first_occurrence_is_logged_and_repeats_within_the_interval_are_counted() -> None:
    clock = Clock()
    throttle = LogThrottle(10.0, clock)
    assert throttle.admit("db down") == 0
    clock.now += 9.9
    assert [throttle.admit("db down") for _ in range(3)] == [None, None, None]
    clock.now += 0.1
    assert throttle.admit("db down") == 3
    assert throttle.admit("db down") is None


def test_each_kind_of_complaint_has_its_own_interval() -> None:
    clock = Clock()
    throttle = LogThrottle(10.0, clock)
    assert throttle.admit("db down") == 0
    assert throttle.admit("redis down") == 0
    assert throttle.admit("db down") is None
    clock.now += 10
    assert throttle.admit("redis down") == 0
    assert throttle.admit("db down") == 1


def test_log_writes_the_admitted_lines_with_the_count_left_out() -> None:
    clock = Clock()
    throttle = LogThrottle(10.0, clock)
    lines: list[tuple[str, dict[str, object]]] = []

    def write(event: str, **fields: object) -> None:
        lines.append((event, fields))

    for _ in range(3):
        throttle.log("db", write, "database down", path="/api/jobs")
    clock.now += 10
    throttle.log("db", write, "database down", path="/api/jobs")
    assert lines == [
        ("database down", {"path": "/api/jobs", "repeats_not_logged": 0}),
        ("database down", {"path": "/api/jobs", "repeats_not_logged": 2}),
    ]
