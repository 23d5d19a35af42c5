"""The read model: SQLAlchemy tables, queries and Alembic migrations."""
