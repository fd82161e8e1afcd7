"""The stores' PostgreSQL statements in the form the psycopg family of drivers reads.

The stores number their placeholders (``$1``), which asyncpg hands to the server as they
are. psycopg 3 and psycopg2, and SQLAlchemy's ``postgresql+psycopg`` and
``postgresql+psycopg2`` (whose ``exec_driver_sql`` passes the text on), parse Python-style
placeholders themselves and read every other ``%`` as the start of one. This is the one place
a statement is rewritten for them: ``$n`` becomes ``%(pn)s`` (named, so a number used twice
stays one value) and ``%`` becomes ``%%``. A ``$n`` inside a quoted string or identifier is
text, not a parameter, and is left alone; ``::type`` casts after a placeholder stay as
written, so the server sees the same types as from asyncpg. The values are asyncpg's, but
for arrays, which the psycopgs take only as lists (``pyformat_params``).
"""

from __future__ import annotations

import functools
import re
from typing import Any, NamedTuple

from jobqueue.txenqueue.plan import Statement

_TOKEN = re.compile(
    r"""
    (?P<quoted> '(?:[^']|'')*' | "(?:[^"]|"")*" )  # a string literal or quoted identifier
    | \$(?P<number>\d+)                            # a numbered placeholder
    | (?P<unsure> -- | /\* | \$ )                  # a comment or dollar quoting: not handled
    | %
    """,
    re.VERBOSE,
)


class PyformatStatement(NamedTuple):
    """A statement as ``cursor.execute(sql, params)`` takes it on a psycopg driver."""

    sql: str
    params: dict[str, Any]


def to_pyformat(statement: Statement) -> PyformatStatement:
    """``statement`` with ``%(pn)s`` placeholders and its values named to match."""
    if isinstance(statement.params, list):
        raise TypeError("a psycopg enqueue runs no executemany: its statements take arrays")
    return PyformatStatement(pyformat_sql(statement.sql), pyformat_params(statement.params))


@functools.cache
def pyformat_sql(sql: str) -> str:
    """``sql`` with ``$n`` as ``%(pn)s`` and ``%`` as ``%%`` (ValueError for comments or
    dollar quoting, where a ``$n`` may be text: the stores' statements use neither)."""
    return _TOKEN.sub(_rewrite, sql)


def pyformat_params(values: tuple[Any, ...]) -> dict[str, Any]:
    """``$1``'s value as ``p1``, and so on. A tuple (an array column of ``INSERT_JOBS``:
    asyncpg binds any sequence to an array parameter) becomes a list, the one sequence the
    psycopgs adapt as an array: psycopg 3 refuses a tuple for an array, psycopg2 writes it
    as a parenthesised list."""
    return {
        f"p{number}": list(value) if isinstance(value, tuple) else value
        for number, value in enumerate(values, start=1)
    }


def _rewrite(token: re.Match[str]) -> str:
    if token["number"] is not None:
        return f"%(p{token['number']})s"
    if token["unsure"] is not None:
        raise ValueError(
            f"cannot rewrite {token['unsure']!r} at offset {token.start()} for psycopg: "
            "only quoted strings and $n placeholders are understood"
        )
    return token[0].replace("%", "%%")
