"""Orphan checks: the scheduled check's findings (cases that wait on nobody)

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-02 13:30:00

Issue 14, item 4: the orphan check (workflows/orphans.py) stores what each run found, so the ops
endpoint (GET /api/ops/orphans) and every worker's gauge show the same last findings without a
visibility scan per request or scrape.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "orphan_checks",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("waiting_on_nobody", sa.Integer(), nullable=False),
        sa.Column("stalled", sa.Integer(), nullable=False),
        sa.Column("ended", sa.Integer(), nullable=False),
        sa.Column("findings", sa.JSON(), nullable=False),
    )
    op.create_index("ix_orphan_checks_checked_at", "orphan_checks", ["checked_at"])


def downgrade() -> None:
    op.drop_index("ix_orphan_checks_checked_at", table_name="orphan_checks")
    op.drop_table("orphan_checks")
