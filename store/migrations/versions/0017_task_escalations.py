"""Tasks: the escalation ladder's steps that fired

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 05:30:00

Issue 13, item 3: each task's ladder steps that fired (step, when, the deadline it fired for),
as its owning workflow projected them, shown in the task's ``escalations``.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch_op:
        batch_op.add_column(sa.Column("escalations", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch_op:
        batch_op.drop_column("escalations")
