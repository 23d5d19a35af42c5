"""Sent e-mails: one row per recipient's copy, by Message-ID

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 03:15:00

Issue 13, item 5: the ``send_email`` activity claims a copy here before it talks to the SMTP
server and marks it sent after, so a retried attempt or a restarted worker does not send it again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sent_emails",
        sa.Column("message_id", sa.String(255), primary_key=True),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("category", sa.String(40), nullable=False),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claim_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ix_sent_emails_idempotency_key", "sent_emails", ["idempotency_key"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_sent_emails_idempotency_key", table_name="sent_emails")
    op.drop_table("sent_emails")
