"""attachments of relationship chats

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 18:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.alter_column("case_id", existing_type=sa.Uuid(), nullable=True)
        batch_op.add_column(sa.Column("relationship_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            "fk_attachments_relationship_id", "relationships", ["relationship_id"], ["id"]
        )
        batch_op.create_index(
            batch_op.f("ix_attachments_relationship_id"), ["relationship_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attachments_relationship_id"))
        batch_op.drop_constraint("fk_attachments_relationship_id", type_="foreignkey")
        batch_op.drop_column("relationship_id")
        batch_op.alter_column("case_id", existing_type=sa.Uuid(), nullable=False)
