"""Alembic environment: migrations run on the blocking driver of DATABASE_URL."""

from alembic import context
from sqlalchemy import create_engine, pool

from store.db import sync_url
from store.models import Base

config = context.config


def run_migrations() -> None:
    url = config.attributes.get("database_url")
    if url is None:
        from settings import get_settings

        url = get_settings().database_url
    engine = create_engine(sync_url(url), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations()
