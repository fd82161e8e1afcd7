"""The stores' ``$n`` statements rewritten for the psycopg drivers, and which SQLAlchemy
drivers get them rewritten."""

from __future__ import annotations

import re
import subprocess
import sys
from uuid import uuid4

import pytest
from sqlalchemy.engine import Dialect as SqlAlchemyDialect
from sqlalchemy.engine import make_url

from jobqueue.txenqueue import JobRequest
from jobqueue.txenqueue.dialects import driver_form
from jobqueue.txenqueue.plan import EnqueuePlan, Statement
from jobqueue.txenqueue.pyformat import pyformat_sql, to_pyformat
from jobqueue.txenqueue.requests import new_jobs

PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def dialect(url: str) -> SqlAlchemyDialect:
    """The dialect of a SQLAlchemy URL, without its driver module (none is connected)."""
    return make_url(url).get_dialect()()


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT $1", "SELECT %(p1)s"),
        ("SELECT $1, $10, $2", "SELECT %(p1)s, %(p10)s, %(p2)s"),
        ("WHERE a = $1 OR b = $1", "WHERE a = %(p1)s OR b = %(p1)s"),
        ("unnest($1::uuid[], $2::timestamptz[])", "unnest(%(p1)s::uuid[], %(p2)s::timestamptz[])"),
        ("SELECT n % 2, 'a%' LIKE $1", "SELECT n %% 2, 'a%%' LIKE %(p1)s"),
        ("SELECT '$1', 'it''s $2', $3", "SELECT '$1', 'it''s $2', %(p3)s"),
        ('SELECT "col$1" FROM t WHERE x = $1', 'SELECT "col$1" FROM t WHERE x = %(p1)s'),
        (
            "SELECT pg_notify('ch', '') WHERE (n - 1) / 200 = $1",
            "SELECT pg_notify('ch', '') WHERE (n - 1) / 200 = %(p1)s",
        ),
    ],
)
def test_placeholders_become_named_and_percent_signs_double(sql: str, expected: str) -> None:
    assert pyformat_sql(sql) == expected


@pytest.mark.parametrize("sql", ["SELECT $1 -- $2", "SELECT /* $2 */ $1", "DO $$ SELECT 1 $$"])
def test_what_might_hide_a_placeholder_is_refused(sql: str) -> None:
    with pytest.raises(ValueError, match="cannot rewrite"):
        pyformat_sql(sql)


def _postgres_statements() -> list[Statement]:
    keyed = [JobRequest("a", {"x": "100%"}, idempotency_key="k"), JobRequest("b")]
    plan = EnqueuePlan("postgresql", new_jobs(keyed))
    lookup = plan.key_lookup()
    assert lookup is not None
    return [lookup, *plan.writes([])]


@pytest.mark.parametrize("statement", _postgres_statements(), ids=["keys", "insert", "outbox"])
def test_each_statement_of_an_enqueue_names_exactly_its_values(statement: Statement) -> None:
    sql, params = to_pyformat(statement)
    assert "$" not in sql
    assert set(PLACEHOLDER.findall(sql)) == set(params)
    assert len(params) == len(statement.params)


def test_array_columns_are_passed_as_lists_with_their_values_unchanged() -> None:
    job_id = uuid4()
    _sql, params = to_pyformat(Statement("SELECT $1::uuid[], $2::text", ((job_id,), "x")))
    assert params == {"p1": [job_id], "p2": "x"}


def test_an_executemany_is_not_rewritten() -> None:
    with pytest.raises(TypeError, match="executemany"):
        to_pyformat(Statement("INSERT INTO t VALUES ($1)", [(1,), (2,)]))


@pytest.mark.parametrize(
    ("sqlalchemy_dialect", "pyformat"),
    [
        (dialect("sqlite://"), False),
        (dialect("postgresql+asyncpg://"), False),
        (dialect("postgresql+psycopg://"), True),
        (dialect("postgresql+psycopg_async://"), True),
        (dialect("postgresql+psycopg2://"), True),
    ],
    ids=["pysqlite", "asyncpg", "psycopg", "psycopg-async", "psycopg2"],
)
def test_psycopg_drivers_get_the_rewritten_statements(
    sqlalchemy_dialect: SqlAlchemyDialect, pyformat: bool
) -> None:
    form = driver_form(sqlalchemy_dialect)
    assert form.pyformat is pyformat
    statement = Statement("SELECT $1", (1,))
    expected = ("SELECT %(p1)s", {"p1": 1}) if pyformat else ("SELECT $1", (1,))
    assert tuple(form.render(statement)) == expected


def test_other_drivers_and_databases_are_refused_naming_the_drivers_taken() -> None:
    with pytest.raises(TypeError, match=r"postgresql\+pg8000 \(format placeholders\).*psycopg"):
        driver_form(dialect("postgresql+pg8000://"))
    with pytest.raises(TypeError, match="SQLite or PostgreSQL, not mysql"):
        driver_form(dialect("mysql+pymysql://"))


def test_importing_jobqueue_loads_no_psycopg() -> None:
    probe = (
        "import sys, jobqueue, jobqueue.txenqueue.sync, jobqueue.txenqueue.asynchronous;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('psycopg', 'psycopg2')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
