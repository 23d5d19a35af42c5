"""a read model built for its lists: stored sort key and list columns, indexes per list

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 13:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TASK_ORDER = ["sort_deadline", "date_created", "id"]
TASK_OWNER = ["owner_org_id", "access_level", "case_visible"]
# The backfill of tasks.case_visible: store.tasks._owner_sees_case as of this revision.
CASE_VISIBLE = """
    CASE
      WHEN tasks.case_id IS NULL THEN true
      WHEN tasks.access_level = 'Creditor' THEN EXISTS (
        SELECT 1 FROM cases WHERE cases.id = tasks.case_id
          AND cases.creditor_id = tasks.owner_org_id)
      ELSE EXISTS (
        SELECT 1 FROM cases WHERE cases.id = tasks.case_id
          AND (cases.partner_id = tasks.owner_org_id OR cases.id IN (
            SELECT case_id FROM case_invitations
            WHERE case_invitations.partner_id = tasks.owner_org_id)))
    END
"""


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sort_deadline", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("case_reference", sa.String(length=100), nullable=True))
        batch_op.add_column(
            sa.Column("case_visible", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
    no_deadline = "'9999-12-31 00:00:00+00'" if postgres else "'9999-12-31 00:00:00.000000'"
    op.execute(f"UPDATE tasks SET sort_deadline = COALESCE(deadline, {no_deadline})")
    op.execute(
        f"UPDATE tasks SET case_visible = ({CASE_VISIBLE}), case_reference = ("
        "SELECT creditor_reference FROM cases WHERE cases.id = tasks.case_id)"
    )
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.alter_column(
            "sort_deadline", existing_type=sa.DateTime(timezone=True), nullable=False
        )
        batch_op.drop_index("ix_tasks_owner_status_deadline")
        batch_op.create_index("ix_tasks_queue", [*TASK_OWNER, *TASK_ORDER])
        batch_op.create_index(
            "ix_tasks_queue_status",
            [*TASK_OWNER, "status", *TASK_ORDER],
            postgresql_include=["overdue_since"],
        )
        batch_op.create_index("ix_tasks_queue_type", [*TASK_OWNER, "type", *TASK_ORDER])
        batch_op.create_index("ix_tasks_queue_assignee", [*TASK_OWNER, "assignee_id", *TASK_ORDER])
        batch_op.create_index("ix_tasks_order", TASK_ORDER)
        batch_op.create_index("ix_tasks_status_order", ["status", *TASK_ORDER])

    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("partner_name", sa.String(length=200), nullable=True))
    op.execute(
        "UPDATE cases SET partner_name = ("
        "SELECT name FROM organisations WHERE organisations.id = cases.partner_id)"
    )
    op.create_index(
        "ix_cases_creditor_list", "cases", ["creditor_id", sa.text("created_at DESC"), "id"]
    )
    op.create_index(
        "ix_cases_partner_list", "cases", ["partner_id", sa.text("created_at DESC"), "id"]
    )
    op.create_index("ix_cases_list", "cases", [sa.text("created_at DESC"), "id"])
    for name, side in (("creditor", ["creditor_id"]), ("partner", ["partner_id"]), ("", [])):
        op.create_index(
            f"ix_cases_{name + '_' if name else ''}status_list",
            "cases",
            [*side, "status", sa.text("created_at DESC"), "id"],
        )
    # Superseded by the *_status_list indexes; a substring search cannot use a b-tree.
    op.drop_index("ix_cases_creditor_status", table_name="cases")
    op.drop_index("ix_cases_partner_status", table_name="cases")
    op.drop_index("ix_cases_debtor_name", table_name="cases")
    if postgres:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.create_index(
            "ix_cases_debtor_name_trgm",
            "cases",
            [sa.text("lower(debtor_name) gin_trgm_ops")],
            postgresql_using="gin",
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_cases_debtor_name_trgm", table_name="cases")
    op.create_index("ix_cases_debtor_name", "cases", ["debtor_name"])
    op.create_index("ix_cases_partner_status", "cases", ["partner_id", "status"])
    op.create_index("ix_cases_creditor_status", "cases", ["creditor_id", "status"])
    for name in ("ix_cases_creditor_status_list", "ix_cases_partner_status_list"):
        op.drop_index(name, table_name="cases")
    op.drop_index("ix_cases_status_list", table_name="cases")
    op.drop_index("ix_cases_list", table_name="cases")
    op.drop_index("ix_cases_partner_list", table_name="cases")
    op.drop_index("ix_cases_creditor_list", table_name="cases")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("partner_name")
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_tasks_status_order")
        batch_op.drop_index("ix_tasks_order")
        batch_op.drop_index("ix_tasks_queue_assignee")
        batch_op.drop_index("ix_tasks_queue_type")
        batch_op.drop_index("ix_tasks_queue_status")
        batch_op.drop_index("ix_tasks_queue")
        batch_op.create_index(
            "ix_tasks_owner_status_deadline", ["owner_org_id", "status", "deadline"]
        )
        batch_op.drop_column("case_visible")
        batch_op.drop_column("case_reference")
        batch_op.drop_column("sort_deadline")
