"""A version of the active webhook subscriptions, bumped by the database on every change

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 05:40:00

Issue 10 (the chat message's latency): the projection's fan-out keeps the active subscriptions
in memory and reads this one row with the statement that writes its events, so a projection
nobody subscribes to sends no SELECT (store/webhooks.py ``fan_out``). Triggers bump the row on
every insert and delete of a subscription and every update of what fan-out reads (``is_active``,
``org_id``, ``events``), in the writing transaction, whichever process or code path writes: a
cached view can never outlive a change. The row is created by the first change, at a random
value (a row deleted and made again does not come back to a value a process has cached).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BUMP = (
    "INSERT INTO webhook_subscriptions_version (id, version) VALUES (1, {start}) "
    "ON CONFLICT (id) DO UPDATE SET version = webhook_subscriptions_version.version + 1"
)
_SQLITE_TRIGGERS = {
    "webhook_subscriptions_version_on_insert": "AFTER INSERT",
    "webhook_subscriptions_version_on_delete": "AFTER DELETE",
    "webhook_subscriptions_version_on_update": "AFTER UPDATE OF is_active, org_id, events",
}


def upgrade() -> None:
    op.create_table(
        "webhook_subscriptions_version",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        bump = _BUMP.format(start="(random() * 4e18)::bigint")
        op.execute(
            "CREATE FUNCTION webhook_subscriptions_changed() RETURNS trigger "
            f"LANGUAGE plpgsql AS $$ BEGIN {bump}; RETURN NULL; END $$"
        )
        op.execute(
            "CREATE TRIGGER webhook_subscriptions_version AFTER INSERT OR DELETE OR TRUNCATE "
            "OR UPDATE OF is_active, org_id, events ON webhook_subscriptions "
            "FOR EACH STATEMENT EXECUTE FUNCTION webhook_subscriptions_changed()"
        )
    else:
        bump = _BUMP.format(start="random() / 4 + 4611686018427387904")
        for name, when in _SQLITE_TRIGGERS.items():
            op.execute(
                f"CREATE TRIGGER {name} {when} ON webhook_subscriptions "
                f"FOR EACH ROW BEGIN {bump}; END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER webhook_subscriptions_version ON webhook_subscriptions")
        op.execute("DROP FUNCTION webhook_subscriptions_changed()")
    else:
        for name in _SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
    op.drop_table("webhook_subscriptions_version")
