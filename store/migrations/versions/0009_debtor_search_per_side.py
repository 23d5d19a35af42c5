"""debtorName search within one creditor's or one partner's cases served by one index each

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 18:20:00

A creditor's or a partner's debtor-name search used to AND two bitmaps: the trigram index over
every case and the side's b-tree (14,600 entries for a busy partner), once for the bounded count
and once for the page. One GIN index over (side, lower(debtor_name) trigrams) finds the matches
of that side directly (``btree_gin`` lets a GIN index hold the uuid column). PostgreSQL only;
SQLite scans, as before.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIDES = ("creditor", "partner")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    for side in SIDES:
        op.create_index(
            f"ix_cases_{side}_debtor_name_trgm",
            "cases",
            [f"{side}_id", sa.text("lower(debtor_name) gin_trgm_ops")],
            postgresql_using="gin",
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for side in SIDES:
        op.drop_index(f"ix_cases_{side}_debtor_name_trgm", table_name="cases")
