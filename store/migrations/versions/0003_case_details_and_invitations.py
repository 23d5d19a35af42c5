"""case details and quote invitations

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 17:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("details", sa.JSON(), nullable=False, server_default="{}"))

    op.create_table(
        "case_invitations",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("partner_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.ForeignKeyConstraint(["partner_id"], ["organisations.id"]),
        sa.PrimaryKeyConstraint("case_id", "partner_id"),
    )
    with op.batch_alter_table("case_invitations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_case_invitations_partner_id"), ["partner_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("case_invitations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_invitations_partner_id"))
    op.drop_table("case_invitations")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("details")
