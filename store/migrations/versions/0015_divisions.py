"""A creditor's divisions, and the division a case is submitted for

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 02:30:00

Issue 12, items A5 and A10: Debitura's divisions (``POST/GET/PUT/DELETE /api/divisions``,
archive), ``creditorDivisionId`` on a case, and the ``DivisionIds`` filter of the case list,
served by a partial index (cases without a division are not in it).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HAS_DIVISION = sa.text("creditor_division_id IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "divisions",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("creditor_id", sa.Uuid(), sa.ForeignKey("organisations.id"), nullable=False),
        sa.Column("company_name", sa.String(200), nullable=False),
        sa.Column("registration_number", sa.String(50), nullable=True),
        sa.Column("address", sa.String(200), nullable=True),
        sa.Column("zip_code", sa.String(50), nullable=True),
        sa.Column("state", sa.String(100), nullable=True),
        sa.Column("city", sa.String(100), nullable=False),
        sa.Column("country_code", sa.String(2), nullable=False),
        sa.Column("office_email", sa.String(250), nullable=True),
        sa.Column("office_phone", sa.String(50), nullable=True),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("used", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_divisions_creditor_list", "divisions", ["creditor_id", "created_at", "id"])
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("creditor_division_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            "fk_cases_creditor_division_id_divisions",
            "divisions",
            ["creditor_division_id"],
            ["id"],
        )
    op.create_index(
        "ix_cases_division_list",
        "cases",
        ["creditor_division_id", sa.text("created_at DESC"), "id"],
        postgresql_where=HAS_DIVISION,
        sqlite_where=HAS_DIVISION,
    )


def downgrade() -> None:
    op.drop_index("ix_cases_division_list", table_name="cases")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_constraint("fk_cases_creditor_division_id_divisions", type_="foreignkey")
        batch_op.drop_column("creditor_division_id")
    op.drop_index("ix_divisions_creditor_list", table_name="divisions")
    op.drop_table("divisions")
