"""Cleanup verdicts: a model's "reply still expected" remembered per task and thread state

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-02 05:45:00

Issue 13, item 6: the nightly cleanup asks a model about a stale chat task only when its thread
changed since the last verdict (or the verdict is older than the reuse limit), so the night's
cap of model calls is spent on tasks not yet asked about instead of the same oldest ones.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cleanup_verdicts",
        sa.Column("task_id", sa.String(200), primary_key=True),
        sa.Column("classifier", sa.String(200), nullable=False),
        sa.Column("seen_seq", sa.Integer(), nullable=True),
        sa.Column("reply_expected", sa.Boolean(), nullable=False),
        sa.Column("confident", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_cleanup_verdicts_decided_at", "cleanup_verdicts", ["decided_at"])


def downgrade() -> None:
    op.drop_index("ix_cleanup_verdicts_decided_at", table_name="cleanup_verdicts")
    op.drop_table("cleanup_verdicts")
