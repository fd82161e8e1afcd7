"""Dead letters not yet on the queue's own DLQ.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Mark the dead letters still to be written to `job-dlq` (Redis mode), and index them."""
    op.add_column(
        "dead_letters",
        sa.Column("queue_pending", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_index(
        "ix_dead_letters_queue_pending",
        "dead_letters",
        ["id"],
        postgresql_where=sa.text("queue_pending"),
        sqlite_where=sa.text("queue_pending"),
    )


def downgrade() -> None:
    """Drop the mark and its index."""
    op.drop_index("ix_dead_letters_queue_pending", table_name="dead_letters")
    op.drop_column("dead_letters", "queue_pending")
