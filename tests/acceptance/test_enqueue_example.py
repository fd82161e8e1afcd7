"""The README's "Enqueue inside your transaction" example: the module beside this test is
the README's block, type-checked with the tests, and run against ``jobqueue serve`` sharing
its SQLite file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.acceptance.enqueue_example import sign_up
from tests.support.serve import running

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = Path(__file__).with_name("enqueue_example.py")


@pytest.mark.parametrize("document", ["README.md", "docs/transactional-enqueue.md"])
def test_the_docs_show_the_example_that_is_run(document: str) -> None:
    text = (ROOT / document).read_text()
    after = text[text.index("<!-- enqueue-example:start -->") :]
    match = re.search(r"```python\n(.*?)```", after, re.DOTALL)
    assert match, "no python block after the enqueue-example marker"
    assert match.group(1) == EXAMPLE.read_text()


def test_a_sign_up_sends_its_email_and_a_failed_one_sends_none(tmp_path: Path) -> None:
    with running(tmp_path) as server:
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'jobs.db'}")
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE users (email TEXT PRIMARY KEY)"))
        job_id = sign_up(engine, "new@example.com")
        server.wait_for_status(str(job_id), "completed", attempts=1)
        with pytest.raises(sa.exc.IntegrityError):
            sign_up(engine, "new@example.com")  # the user exists: no second e-mail
        stats = server.client.get("/api/jobs/stats").json()
        engine.dispose()
    assert stats["completed"] == 1
    assert sum(stats.values()) == 1
    (eml,) = (tmp_path / "outbox").glob("*.eml")
    assert "To: new@example.com" in eml.read_text()
