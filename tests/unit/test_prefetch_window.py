"""The Redis-mode prefetch window: wide while fetches find jobs, narrow once one does not."""

from __future__ import annotations

from jobqueue.queue.prefetch import PrefetchWindow


def test_starts_at_the_idle_prefetch() -> None:
    assert PrefetchWindow(10, 100).size == 10


def test_doubles_while_every_fetch_finds_a_job_up_to_the_ceiling() -> None:
    window = PrefetchWindow(10, 100)
    sizes = [window.observe(asked=5, found=5) for _ in range(5)]
    assert sizes == [20, 40, 80, 100, 100]


def test_falls_back_at_the_first_batch_that_found_the_queue_empty() -> None:
    window = PrefetchWindow(10, 100)
    window.observe(8, 8)
    window.observe(8, 8)
    assert window.observe(8, 7) == 10


def test_a_zero_prefetch_still_grows_under_a_backlog() -> None:
    window = PrefetchWindow(0, 8)
    assert [window.observe(1, 1) for _ in range(5)] == [2, 4, 8, 8, 8]
    assert window.observe(3, 0) == 0


def test_a_ceiling_below_the_idle_prefetch_keeps_it_fixed() -> None:
    window = PrefetchWindow(10, 4)
    assert window.observe(5, 5) == 10
    assert window.observe(5, 0) == 10


def test_an_empty_batch_changes_nothing() -> None:
    window = PrefetchWindow(10, 100)
    assert window.observe(0, 0) == 10
