"""Digests: a user's own time zone, and what the daily summary and overdue reminders sent

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02 05:40:00

Issue 13, item 2: the partner daily summary goes out in the morning of the user's time zone
(``users.timezone``, else the organisation's) and records each user's day in
``daily_summary_marks``; the overdue reminders record each user's latest 7-day period in
``overdue_reminder_marks``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
# On this branch the last migration is 0016; the lead chains it after 0018 at merge.
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("timezone", sa.String(64), nullable=True))
    op.create_table(
        "daily_summary_marks",
        sa.Column(
            "user_id",
            sa.Uuid(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("local_date", sa.Date(), primary_key=True),
        sa.Column("tasks", sa.Integer(), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "overdue_reminder_marks",
        sa.Column(
            "user_id",
            sa.Uuid(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("sent", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("overdue_reminder_marks")
    op.drop_table("daily_summary_marks")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("timezone")
