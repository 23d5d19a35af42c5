"""The migrations build exactly the schema the models describe (a forgotten migration fails here)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import make_url

from store.db import sync_url
from store.migrate import alembic_config, upgrade
from store.models import Base


def test_migrated_sqlite_schema_matches_the_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'schema.db'}"
    upgrade(url)
    engine = sa.create_engine(sync_url(url))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_migrations_go_down_to_nothing_and_up_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'roundtrip.db'}"
    upgrade(url)
    command.downgrade(alembic_config(url), "base")
    upgrade(url)


@pytest.mark.db
def test_migrated_schema_of_the_test_database_matches_the_models(database_url: str) -> None:
    """The same check on the database the suite runs on (PostgreSQL under .ci/run), where the
    migrations also build the PostgreSQL-only indexes (pg_trgm for the debtor-name search)."""
    engine = sa.create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
            indexes = {index["name"] for index in sa.inspect(connection).get_indexes("cases")}
    finally:
        engine.dispose()
    assert differences == []
    if engine.dialect.name == "postgresql":
        assert "ix_cases_debtor_name_trgm" in indexes


@pytest.fixture
def empty_database_url(tmp_path: Path, database_url: str) -> Iterator[str]:
    """A new, empty database of the suite's kind: a SQLite file, or on the PostgreSQL server
    of CASELOOP_TEST_DATABASE_URL a database of its own (dropped afterwards)."""
    if make_url(database_url).get_backend_name() != "postgresql":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    name = f"caseloop_migration_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(sync_url(database_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield make_url(database_url).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


_ORGS = sa.table(
    "organisations",
    *(sa.column(n) for n in ("kind", "name", "country", "timezone")),
    sa.column("id", sa.Uuid()),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
_USERS = sa.table(
    "users",
    sa.column("id", sa.Uuid()),
    sa.column("org_id", sa.Uuid()),
    sa.column("email"),
    sa.column("active", sa.Boolean()),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
_CASES = sa.table(
    "cases",
    *(
        sa.column(n)
        for n in (
            "version",
            "case_number",
            "creditor_reference",
            "currency_code",
            "claim_description",
            "debtor_name",
            "status",
        )
    ),
    sa.column("id", sa.Uuid()),
    sa.column("creditor_id", sa.Uuid()),
    sa.column("submitted_by", sa.Uuid()),
    sa.column("amount_to_recover", sa.Numeric(15, 2)),
    sa.column("date", sa.Date()),
    sa.column("debtor", sa.JSON()),
    sa.column("details", sa.JSON()),
    *(sa.column(n, sa.DateTime(timezone=True)) for n in ("last_status_change", "created_at")),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)
_PAYMENTS = sa.table(
    "case_payments",
    sa.column("case_id", sa.Uuid()),
    sa.column("id"),
    sa.column("amount", sa.Numeric(15, 2)),
    sa.column("paid_on", sa.Date()),
    sa.column("paid_to"),
    sa.column("recorded_at", sa.DateTime(timezone=True)),
)


@pytest.mark.db
def test_migration_0012_copies_the_payments_already_recorded_in_case_details(
    empty_database_url: str,
) -> None:
    url = empty_database_url
    upgrade(url, "0011")
    now = dt.datetime(2026, 11, 20, 10, 15, tzinfo=dt.UTC)
    org, user = uuid.uuid4(), uuid.uuid4()
    paid, unpaid, old_style = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    details = {
        # As CaseDetails is stored today (by alias) ...
        paid: {
            "payments": [
                {
                    "id": "p-1",
                    "amount": "2500.00",
                    "paidOn": "2026-11-18",
                    "paidTo": "Creditor",
                    "note": "Bank transfer",
                    "recordedBy": str(user),
                    "recordedAt": "2026-11-18T09:00:00Z",
                },
                {
                    "id": "p-2",
                    "amount": "250.5",
                    "paidOn": "2026-11-19",
                    "paidTo": "Partner",
                    "recordedBy": str(user),
                    "recordedAt": "2026-11-19T23:30:00+01:00",
                },
            ]
        },
        unpaid: {"payments": []},
        # ... and by field name, as older rows may hold it.
        old_style: {
            "payments": [
                {
                    "id": "p-1",
                    "amount": "10.00",
                    "paid_on": "2026-10-01",
                    "paid_to": "Creditor",
                    "recorded_by": str(user),
                    "recorded_at": "2026-10-01T12:00:00+00:00",
                }
            ]
        },
    }
    engine = sa.create_engine(sync_url(url))
    try:
        with engine.begin() as connection:
            connection.execute(
                _ORGS.insert().values(
                    id=org,
                    kind="creditor",
                    name="Migrated ApS",
                    country="DK",
                    timezone="Europe/Copenhagen",
                    created_at=now,
                )
            )
            connection.execute(
                _USERS.insert().values(
                    id=user, org_id=org, email="m@migrated.example", active=True, created_at=now
                )
            )
            for number, (case_id, stored) in enumerate(details.items(), start=1):
                connection.execute(
                    _CASES.insert().values(
                        id=case_id,
                        version=1,
                        case_number=f"CL-2026-{number:06d}",
                        creditor_id=org,
                        submitted_by=user,
                        creditor_reference=f"MIG-{number}",
                        currency_code="DKK",
                        amount_to_recover=Decimal("12500.00"),
                        date=dt.date(2026, 9, 1),
                        claim_description="Invoice",
                        debtor_name="Debtor",
                        debtor={"type": "Company", "name": "Debtor", "countryAlpha2": "DK"},
                        status="In Collection",
                        details=stored,
                        last_status_change=now,
                        created_at=now,
                        updated_at=now,
                    )
                )

        upgrade(url, "0012")

        with engine.connect() as connection:
            rows = connection.execute(
                sa.select(_PAYMENTS).order_by(_PAYMENTS.c.paid_on, _PAYMENTS.c.id)
            ).all()
    finally:
        engine.dispose()

    def utc(moment: dt.datetime) -> dt.datetime:  # SQLite gives back naive UTC
        return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment

    assert [
        (r.case_id, r.id, r.amount, r.paid_on, r.paid_to, utc(r.recorded_at)) for r in rows
    ] == [
        (
            old_style,
            "p-1",
            Decimal("10.00"),
            dt.date(2026, 10, 1),
            "Creditor",
            dt.datetime(2026, 10, 1, 12, tzinfo=dt.UTC),
        ),
        (
            paid,
            "p-1",
            Decimal("2500.00"),
            dt.date(2026, 11, 18),
            "Creditor",
            dt.datetime(2026, 11, 18, 9, tzinfo=dt.UTC),
        ),
        (
            paid,
            "p-2",
            Decimal("250.50"),
            dt.date(2026, 11, 19),
            "Partner",
            dt.datetime(2026, 11, 19, 22, 30, tzinfo=dt.UTC),
        ),
    ]
