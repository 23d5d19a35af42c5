"""Engines and sessions for the read model: SQLite by default, PostgreSQL in production.

PostgreSQL runs on psycopg's async driver. SQLite runs on ``store.sqlite_driver``
(``sqlite+caseloop``): SQLAlchemy's aiosqlite dialect whose statements each cross once to the
connection's thread (cursor, execute, fetch and close in one call there, where SQLAlchemy's own
adapter made three or four round trips), with COMMIT and ROLLBACK sent only when SQLite has a
transaction open, and with the writers of one process taking turns for SQLite's write lock
(``store.sqlite_driver.WriteTurns``) instead of sleeping in its busy handler. Every SQLite
connection is in WAL mode with a 10 s busy_timeout and foreign keys on (``_sqlite_pragmas``),
and is rolled back on its return to the pool only if a transaction is still open
(``_sqlite_reset``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import event, inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import PoolResetState

from store import sqlite_driver

CONNECT_TIMEOUT_SECONDS = 5
# SQLAlchemy's own defaults: per process, 5 connections kept and up to 10 more under load.
POOL_SIZE = 5
MAX_OVERFLOW = 10
T = TypeVar("T")

_ASYNC_DRIVERS = {"sqlite": sqlite_driver.DRIVER_NAME, "postgresql": "postgresql+psycopg"}
_SYNC_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}


def _with_driver(url: str, drivers: dict[str, str]) -> URL:
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend not in drivers:
        raise ValueError(f"DATABASE_URL must be sqlite or postgresql, not {backend!r}")
    return parsed.set(drivername=drivers[backend])


def async_url(url: str) -> URL:
    """The URL with the async driver caseloop uses for that database."""
    return _with_driver(url, _ASYNC_DRIVERS)


def sync_url(url: str) -> URL:
    """The URL with the blocking driver (Alembic, the CLI)."""
    return _with_driver(url, _SYNC_DRIVERS)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the API read while the worker writes; busy_timeout makes writers queue, not fail.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={sqlite_driver.BUSY_TIMEOUT_SECONDS * 1000}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def create_engine(
    url: str, *, pool_size: int = POOL_SIZE, max_overflow: int = MAX_OVERFLOW
) -> AsyncEngine:
    """An async engine for DATABASE_URL, keeping up to ``pool_size`` connections open and
    opening up to ``max_overflow`` more under load (DATABASE_POOL_SIZE, DATABASE_MAX_OVERFLOW).

    Bound parameters are kept out of error messages (``hide_parameters``): they hold debtor
    names and chat text, and errors end up in logs and in workflow histories."""
    parsed = async_url(url)
    connect_args: dict[str, Any] = {}
    pool: dict[str, Any] = {"pool_size": pool_size, "max_overflow": max_overflow}
    if parsed.get_backend_name() == "postgresql":
        # A database host that does not answer fails the request (503) instead of hanging it.
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
    elif parsed.database in (None, "", ":memory:"):
        pool = {}  # an in-memory SQLite database lives in its one connection
    if parsed.get_backend_name() == "sqlite":
        pool["pool_reset_on_return"] = None  # _sqlite_reset does it
    engine = create_async_engine(
        parsed,
        # A server may drop a pooled connection (a restart, a proxy's idle timeout): test each
        # one as it leaves the pool. A SQLite file has no server, and the test is a round trip
        # through the driver's thread for every checkout.
        pool_pre_ping=parsed.get_backend_name() == "postgresql",
        hide_parameters=True,
        connect_args=connect_args,
        **pool,
    )
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine.pool, "reset", _sqlite_reset)
    return engine


def _sqlite_reset(dbapi_connection: Any, record: Any, state: PoolResetState) -> None:
    """Roll back a SQLite connection returning to the pool only if a transaction is still open.

    The pool's usual reset is an unconditional ROLLBACK, a round trip through the driver's
    thread even after a COMMIT, on every checkin; SQLite says itself whether a transaction is
    open. Engines on SQLite are created with ``pool_reset_on_return=None`` and this hook instead
    (SQLAlchemy's documented way to a custom reset)."""
    if state.asyncio_safe and (state.terminate_only or record.driver_connection.in_transaction):
        dbapi_connection.rollback()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def transaction(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session whose work commits on success and rolls back on error."""
    async with factory() as session, session.begin():
        yield session


@asynccontextmanager
async def statements(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncConnection]:
    """A connection of the factory's engine whose statements commit on success and roll back on
    error: for writers of plain statements (the projections), with no ORM session around them."""
    engine: AsyncEngine = factory.kw["bind"]
    async with engine.begin() as connection:
        yield connection


async def insert_once(factory: async_sessionmaker[AsyncSession], row: T) -> tuple[T, bool]:
    """Insert ``row`` unless a row with its primary key exists: the stored row, and whether this
    call inserted it. For rows whose id derives from an Idempotency-Key, so a retried request
    (even one racing with its first attempt) finds the first row instead of writing a second."""
    model = type(row)
    key = inspect(model).primary_key_from_instance(row)
    try:
        async with transaction(factory) as session:
            existing = await session.get(model, key)
            if existing is not None:
                return existing, False
            session.add(row)
        return row, True
    except IntegrityError:
        async with factory() as session:
            existing = await session.get(model, key)
        if existing is None:
            raise  # another constraint failed, not the key
        return existing, False
