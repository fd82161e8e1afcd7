"""Handler results, the history of attempts, and what an idempotency key was used for.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from jobqueue.store.tables import JSONType, UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ``jobs.result`` and ``jobs.request_fingerprint``, and the ``job_attempts`` table."""
    op.add_column("jobs", sa.Column("result", JSONType, nullable=True))
    op.add_column("jobs", sa.Column("request_fingerprint", sa.String(64), nullable=True))
    op.create_table(
        "job_attempts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column(
            "job_id", sa.Uuid(), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(120), nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=True),
    )
    op.create_index("ix_job_attempts_job_id", "job_attempts", ["job_id", "number"])


def downgrade() -> None:
    """Drop them again."""
    op.drop_index("ix_job_attempts_job_id", table_name="job_attempts")
    op.drop_table("job_attempts")
    op.drop_column("jobs", "request_fingerprint")
    op.drop_column("jobs", "result")
