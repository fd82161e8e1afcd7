"""The enqueue on a raw psycopg2 connection (SQLAlchemy's ``postgresql+psycopg2`` goes through
its ``Connection``, like any SQLAlchemy driver).

psycopg2 stays optional: nothing here imports it before the application passes one of its
connections, and an application that holds one has imported it already.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

from jobqueue.txenqueue.plan import Dialect, Statement
from jobqueue.txenqueue.pyformat import PyformatStatement, to_pyformat

if TYPE_CHECKING:
    import psycopg2.extensions


def psycopg2_driver(conn: object) -> Psycopg2 | None:
    """The driver for a psycopg2 connection; None for any other object."""
    module = sys.modules.get("psycopg2.extensions")
    if module is not None and isinstance(conn, module.connection):
        return Psycopg2(conn)
    return None


class Psycopg2:
    """A psycopg2 connection. Its default mode opens a transaction at the first statement,
    which the application commits; in autocommit mode outside a transaction the enqueue
    opens one of its own, so that the rows and their notifications commit together."""

    dialect: Dialect = "postgresql"

    def __init__(self, conn: psycopg2.extensions.connection) -> None:
        self.conn = conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """The application's transaction, or one of the enqueue's own (autocommit mode)."""
        from psycopg2.extensions import TRANSACTION_STATUS_IDLE

        idle = self.conn.info.transaction_status == TRANSACTION_STATUS_IDLE
        if not (self.conn.autocommit and idle):
            yield
            return
        self._execute("BEGIN")
        try:
            yield
        except BaseException:
            self._execute("ROLLBACK")
            raise
        self._execute("COMMIT")

    def fetch(self, statement: Statement) -> Sequence[Sequence[Any]]:
        """The statement's rows, as tuples."""
        with self._cursor() as cursor:
            cursor.execute(*_adapted(to_pyformat(statement)))
            return cursor.fetchall()

    def run(self, statement: Statement) -> None:
        """Run the statement; its rows, if any, are not read."""
        with self._cursor() as cursor:
            cursor.execute(*_adapted(to_pyformat(statement)))

    def _execute(self, command: str) -> None:
        with self._cursor() as cursor:
            cursor.execute(command)

    def _cursor(self) -> psycopg2.extensions.cursor:
        """A plain cursor (rows as tuples) whatever the connection's ``cursor_factory``."""
        from psycopg2.extensions import cursor

        return self.conn.cursor(cursor_factory=cursor)


def _adapted(statement: PyformatStatement) -> PyformatStatement:
    """UUIDs as text: psycopg2 adapts none unless the application called ``register_uuid``,
    and the statements cast the text to ``uuid`` anyway."""
    params = {name: _text_uuids(value) for name, value in statement.params.items()}
    return PyformatStatement(statement.sql, params)


def _text_uuids(value: Any) -> Any:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, list):
        return [str(item) if isinstance(item, UUID) else item for item in value]
    return value
