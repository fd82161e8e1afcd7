"""Walking a list endpoint page by page, for both clients' ``iter_*`` methods (no I/O).

Pages are read by offset, newest first. A job created while the walk goes on pushes older
ones down a place, so the next page would start with the last item of the previous one:
items already seen on the previous page are skipped. A job deleted meanwhile pulls later
ones up, so one may be missed; a walk is a snapshot only when nothing changes meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from jobqueue.client.calls import MAX_PAGE_SIZE, Call

T = TypeVar("T")


class Pager(Generic[T]):
    """The calls of one walk and the items each page adds."""

    def __init__(
        self,
        page: Callable[[int, int], Call[list[T]]],
        identity: Callable[[T], Hashable],
        page_size: int = 100,
    ) -> None:
        """``page(limit, offset)`` builds a page's call; ``identity`` tells items apart."""
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be from 1 to {MAX_PAGE_SIZE}, not {page_size}")
        self._page = page
        self._identity = identity
        self._size = page_size
        self._offset = 0
        self._previous: set[Hashable] = set()
        self.done = False

    def next_call(self) -> Call[list[T]]:
        """The call for the next page (while not ``done``)."""
        return self._page(self._size, self._offset)

    def take(self, items: list[T]) -> list[T]:
        """The items of a page just read that the walk has not yielded yet."""
        self._offset += len(items)
        self.done = len(items) < self._size
        fresh = [item for item in items if self._identity(item) not in self._previous]
        self._previous = {self._identity(item) for item in items}
        return fresh
