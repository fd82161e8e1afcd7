"""The enqueue on a psycopg 3 connection, blocking (``psycopg.Connection``) or async
(``psycopg.AsyncConnection``).

psycopg stays optional: nothing here imports it before the application passes one of its
connections, and an application that holds one has imported it already.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from jobqueue.txenqueue.plan import Dialect, Statement
from jobqueue.txenqueue.pyformat import to_pyformat

if TYPE_CHECKING:
    import psycopg


def psycopg_driver(conn: object) -> Psycopg | None:
    """The driver for a ``psycopg.Connection``; None for any other object."""
    module = sys.modules.get("psycopg")
    if module is not None and isinstance(conn, module.Connection):
        return Psycopg(conn)
    return None


def async_psycopg_driver(conn: object) -> AsyncPsycopg | None:
    """The driver for a ``psycopg.AsyncConnection``; None for any other object."""
    module = sys.modules.get("psycopg")
    if module is not None and isinstance(conn, module.AsyncConnection):
        return AsyncPsycopg(conn)
    return None


def _needs_own_transaction(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> bool:
    """In autocommit mode outside a transaction block every statement would commit on its
    own; the enqueue then opens a transaction so that the rows and their notifications
    commit together. Otherwise the statements join the application's transaction (psycopg
    opens one at the first statement, and the application commits it)."""
    from psycopg.pq import TransactionStatus

    return conn.autocommit and conn.info.transaction_status == TransactionStatus.IDLE


class Psycopg:
    """A blocking psycopg 3 connection."""

    dialect: Dialect = "postgresql"

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """The application's transaction, or one of the enqueue's own (autocommit mode)."""
        if not _needs_own_transaction(self.conn):
            yield
            return
        with self.conn.transaction():
            yield

    def fetch(self, statement: Statement) -> Sequence[Sequence[Any]]:
        """The statement's rows, as tuples."""
        with self._cursor() as cursor:
            cursor.execute(*to_pyformat(statement))
            return cursor.fetchall()

    def run(self, statement: Statement) -> None:
        """Run the statement; its rows, if any, are not read."""
        with self._cursor() as cursor:
            cursor.execute(*to_pyformat(statement))

    def _cursor(self) -> psycopg.Cursor[tuple[Any, ...]]:
        """A plain cursor whatever the connection's ``cursor_factory`` (a ``RawCursor``
        would not read ``%(name)s``) and ``row_factory`` (a dict row would not unpack)."""
        import psycopg
        from psycopg.rows import tuple_row

        return psycopg.Cursor(self.conn, row_factory=tuple_row)


class AsyncPsycopg:
    """An async psycopg 3 connection."""

    dialect: Dialect = "postgresql"

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.conn = conn

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """The application's transaction, or one of the enqueue's own (autocommit mode)."""
        if not _needs_own_transaction(self.conn):
            yield
            return
        async with self.conn.transaction():
            yield

    async def fetch(self, statement: Statement) -> Sequence[Sequence[Any]]:
        """The statement's rows, as tuples."""
        async with self._cursor() as cursor:
            await cursor.execute(*to_pyformat(statement))
            return await cursor.fetchall()

    async def run(self, statement: Statement) -> None:
        """Run the statement; its rows, if any, are not read."""
        async with self._cursor() as cursor:
            await cursor.execute(*to_pyformat(statement))

    def _cursor(self) -> psycopg.AsyncCursor[tuple[Any, ...]]:
        """A plain cursor whatever the connection's factories (see ``Psycopg._cursor``)."""
        import psycopg
        from psycopg.rows import tuple_row

        return psycopg.AsyncCursor(self.conn, row_factory=tuple_row)
