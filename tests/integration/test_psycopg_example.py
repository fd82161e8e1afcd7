"""The psycopg example of ``docs/transactional-enqueue.md``: the module beside this test is
the document's block, type-checked with the tests, and run on a fresh PostgreSQL database."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest

from jobqueue.domain.jobs import JobStatus
from jobqueue.store.factory import open_store
from jobqueue.store.migrate import migrate_async
from jobqueue.store.postgres import plain_dsn
from tests.integration.psycopg_example import place_order
from tests.services import fresh_postgres_database

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "transactional-enqueue.md"
EXAMPLE = Path(__file__).with_name("psycopg_example.py")


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh, migrated PostgreSQL database with the example's ``orders`` table, one order
    per e-mail address, checked at commit (so after the enqueue)."""
    async with fresh_postgres_database() as url:
        await migrate_async(url)
        with psycopg.connect(plain_dsn(url), autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE orders (email text UNIQUE DEFERRABLE INITIALLY DEFERRED, "
                "total_cents int NOT NULL)"
            )
        yield url


def test_the_document_shows_the_example_that_is_run() -> None:
    text = DOCUMENT.read_text()
    after = text[text.index("<!-- psycopg-example:start -->") :]
    match = re.search(r"```python\n(.*?)```", after, re.DOTALL)
    assert match, "no python block after the psycopg-example marker"
    assert match.group(1) == EXAMPLE.read_text()


async def test_an_order_comes_with_its_receipt_and_one_refused_at_commit_with_none(
    postgres_url: str,
) -> None:
    with psycopg.connect(plain_dsn(postgres_url)) as conn:
        job_id = place_order(conn, "buyer@example.com", 1250)
        with pytest.raises(psycopg.errors.UniqueViolation):
            place_order(conn, "buyer@example.com", 990)  # fails at its commit
        orders = conn.execute("SELECT email, total_cents FROM orders").fetchall()
    store = open_store(postgres_url)
    try:
        job = await store.get(job_id)
        counts = await store.count_by_status()
    finally:
        await store.close()
    assert orders == [("buyer@example.com", 1250)]
    assert job is not None
    assert (job.type, job.status) == ("send-email", JobStatus.PENDING)
    assert job.payload == {"to": "buyer@example.com", "subject": "Your order of 12.50 EUR"}
    assert sum(counts.values()) == 1
