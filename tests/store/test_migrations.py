"""The migrations build exactly the schema the models describe (a forgotten migration fails here)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

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
