"""A case's due date is optional

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 23:00:00

``POST /api/cases`` takes ``dueDate`` as optional, as Debitura's request model does (issue 12);
a case submitted without one has none.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.alter_column("due_date", existing_type=sa.Date(), nullable=True)


def downgrade() -> None:
    op.execute("UPDATE cases SET due_date = date WHERE due_date IS NULL")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.alter_column("due_date", existing_type=sa.Date(), nullable=False)
