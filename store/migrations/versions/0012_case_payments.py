"""Debtor payments in a table of their own

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 00:05:00

``GET /api/payments`` (Debitura's ``PaymentsApi``, issue 12) pages every payment of the cases a
caller sees; the projection writes ``case_payments`` beside the case row. The payments already
recorded are copied from ``cases.details``.
"""

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        "case_payments",
        sa.Column("case_id", sa.Uuid(), sa.ForeignKey("cases.id"), primary_key=True),
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("amount", sa.Numeric(15, 2), nullable=False),
        sa.Column("paid_on", sa.Date(), nullable=False),
        sa.Column("paid_to", sa.String(20), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_case_payments_recorded", "case_payments", ["recorded_at", "case_id", "id"])
    bind = op.get_bind()
    naive = bind.dialect.name == "sqlite"  # SQLite keeps UTC without its offset (UtcDateTime)
    rows = []
    for case_id, details in bind.execute(sa.text("SELECT id, details FROM cases")):
        stored = json.loads(details) if isinstance(details, str) else details or {}
        for p in stored.get("payments") or []:
            rows.append(
                {
                    "case_id": uuid.UUID(str(case_id)),
                    "id": p["id"],
                    "amount": Decimal(str(p["amount"])),
                    "paid_on": dt.date.fromisoformat(p.get("paid_on", p.get("paidOn"))),
                    "paid_to": p.get("paid_to", p.get("paidTo")),
                    "recorded_at": _utc(p.get("recorded_at", p.get("recordedAt")), naive),
                }
            )
    if rows:
        op.bulk_insert(table, rows)


def _utc(text: str, naive: bool) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)
    return moment.replace(tzinfo=None) if naive else moment


def downgrade() -> None:
    op.drop_index("ix_case_payments_recorded", table_name="case_payments")
    op.drop_table("case_payments")
