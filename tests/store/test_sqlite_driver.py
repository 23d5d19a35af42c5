"""caseloop's SQLite driver (store/sqlite_driver.py): a statement is one round trip between the
event loop and the connection's thread (SQLAlchemy's aiosqlite adapter made three or four), a
COMMIT one, and results, errors and the engine's guarantees are SQLAlchemy's as before.
Counts, not times: bench/ times it."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import StaticPool

from store import sqlite_driver
from store.db import create_engine, session_factory
from store.sqlite_driver import WRITE_TURNS
from tests.support import thread_trips

metadata = MetaData()
items = Table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String, nullable=False, unique=True),
)


class Base(DeclarativeBase):
    metadata = metadata


class Item(Base):
    __tablename__ = "orm_items"
    id: Mapped[str] = mapped_column(primary_key=True)
    name: Mapped[str]


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncEngine:
    engine = create_engine(f"sqlite:///{tmp_path / 'driver.db'}")
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield engine  # type: ignore[misc]
    await engine.dispose()


async def test_each_statement_is_one_trip_to_the_sqlite_thread_and_a_commit_one(
    engine: AsyncEngine,
) -> None:
    with thread_trips(engine) as trips:  # counts the connections checked out meanwhile
        async with engine.connect() as connection:
            await connection.execute(select(1))
            trips.clear()
            inserted = await connection.execute(insert(items).values(name="a"))
            assert (trips, inserted.rowcount, inserted.inserted_primary_key) == (["_run"], 1, (1,))
            trips.clear()
            returned = await connection.execute(
                insert(items).values(name="b").returning(items.c.id, items.c.name)
            )
            assert (returned.all(), trips) == ([(2, "b")], ["_run"])
            trips.clear()
            many = await connection.execute(insert(items), [{"name": "c"}, {"name": "d"}])
            assert (many.rowcount, trips) == (2, ["_run"])
            trips.clear()
            changed = await connection.execute(
                update(items).where(items.c.name.in_(["c", "d"])).values(name=items.c.name + "!")
            )
            assert (changed.rowcount, trips) == (2, ["_run"])
            trips.clear()
            rows = await connection.execute(select(items.c.name).order_by(items.c.id))
            assert (list(rows.keys()), rows.scalars().all()) == (["name"], ["a", "b", "c!", "d!"])
            assert trips == ["_run"]
            trips.clear()
            await connection.commit()
            assert trips == ["commit"]
            trips.clear()
            assert (await connection.execute(select(items.c.id).where(items.c.id == 9))).all() == []
            await connection.commit()  # nothing written: SQLite has no transaction to end
            assert trips == ["_run"]


async def test_an_orm_session_write_is_one_trip_per_statement(engine: AsyncEngine) -> None:
    """Through the ORM as the API and the projections use it: a get, a flush, the commit."""
    sessions = session_factory(engine)
    with thread_trips(engine) as trips:
        async with sessions() as session, session.begin():
            assert await session.get(Item, "item-1") is None
            session.add(Item(id="item-1", name="Acme"))
    assert trips == ["_run", "_run", "commit"]
    async with sessions() as session:
        stored = await session.get(Item, "item-1")
    assert stored is not None and stored.name == "Acme"


async def test_sqlite_errors_surface_as_sqlalchemy_exceptions(engine: AsyncEngine) -> None:
    """Projections retry OperationalError (activities/projection.py TRANSIENT_ERRORS) and
    insert_once catches IntegrityError: the thread's sqlite3 errors still arrive as those."""
    async with engine.begin() as connection:
        await connection.execute(insert(items).values(name="a"))
    async with engine.connect() as connection:
        with pytest.raises(sa_exc.IntegrityError):
            await connection.execute(insert(items).values(name="a"))
        await connection.rollback()
        with pytest.raises(sa_exc.OperationalError, match="no such table"):
            await connection.execute(text("SELECT * FROM missing"))
    # SQLite's write lock held by another process's writer (a plain sqlite3 connection: it does
    # not take this process's write turn, which would make ``other`` wait for it instead).
    holder = sqlite3.connect(engine.url.database or "")
    async with engine.connect() as other:
        holder.execute("BEGIN IMMEDIATE")  # holds SQLite's write lock
        await other.exec_driver_sql("PRAGMA busy_timeout=0")
        with pytest.raises(sa_exc.OperationalError, match="database is locked"):
            await other.execute(insert(items).values(name="blocked"))
        await other.rollback()
        holder.rollback()
        holder.close()
        await other.exec_driver_sql("PRAGMA busy_timeout=10000")


async def test_a_closed_sqlite_connection_is_a_disconnect_and_the_pool_replaces_it(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        await raw.driver_connection.close()
        with pytest.raises(sa_exc.OperationalError) as failed:
            await connection.execute(select(items.c.id))
        assert failed.value.connection_invalidated
    async with engine.connect() as connection:
        assert (await connection.execute(select(items.c.id))).all() == []


async def test_in_memory_sqlite_keeps_one_connection_and_streams_still_work() -> None:
    """Tests' in-memory SQLite (one StaticPool connection, so every session sees the same
    database) and server-side cursors (``stream``), which keep SQLAlchemy's own cursor."""
    engine = create_engine("sqlite://")
    try:
        assert isinstance(engine.pool, StaticPool)
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
            await connection.execute(insert(items), [{"name": f"n{i}"} for i in range(5)])
        async with engine.connect() as connection:
            streamed = await connection.stream(select(items.c.name).order_by(items.c.id))
            names = [name async for name in streamed.scalars()]
        assert names == ["n0", "n1", "n2", "n3", "n4"]
        async with engine.connect() as connection:
            pragmas = [
                (await connection.exec_driver_sql(f"PRAGMA {name}")).scalar()
                for name in ("foreign_keys", "busy_timeout")
            ]
        assert pragmas == [1, 10000]
    finally:
        await engine.dispose()


# -- writers of one process take turns (store/sqlite_driver.py, "Writers take turns") ----------


async def test_a_connection_holds_the_write_turn_exactly_while_its_write_transaction_is_open(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    turn = WRITE_TURNS.lock(str(tmp_path / "driver.db"))
    async with engine.connect() as connection:
        await connection.execute(select(items))
        assert not turn.locked()  # a read opens no write transaction
        await connection.execute(insert(items).values(name="a"))
        assert turn.locked()
        await connection.commit()
        assert not turn.locked()
        await connection.execute(update(items).values(name="b"))
        assert turn.locked()
        await connection.rollback()
        assert not turn.locked()
        await connection.execute(insert(items).values(name="c"))
        with pytest.raises(sa_exc.IntegrityError):
            await connection.execute(insert(items).values(name="c"))
        assert turn.locked()  # the failed statement left the transaction open
        await connection.rollback()
        assert not turn.locked()
    async with engine.connect() as connection:  # returned to the pool mid-transaction
        await connection.execute(insert(items).values(name="d"))
        assert turn.locked()
    assert not turn.locked()


async def test_a_waiting_writer_starts_as_soon_as_the_previous_one_commits(
    engine: AsyncEngine,
) -> None:
    """SQLite's busy handler would have the second writer asleep (25-100 ms steps by then)
    when the first commits; its turn wakes it at once."""
    async with engine.connect() as first, engine.connect() as second:
        await first.execute(insert(items).values(name="first"))
        started = asyncio.get_running_loop().time()
        waiting = asyncio.create_task(second.execute(insert(items).values(name="second")))
        await asyncio.sleep(0.25)
        assert not waiting.done()
        await first.commit()
        committed = asyncio.get_running_loop().time()
        await waiting
        assert asyncio.get_running_loop().time() - committed < 0.04
        assert committed - started >= 0.25
        await second.commit()
        names = (await second.execute(select(items.c.name).order_by(items.c.id))).scalars()
        assert list(names) == ["first", "second"]


async def test_a_writer_that_gets_no_turn_within_the_busy_timeout_fails_as_sqlite_would(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_driver, "BUSY_TIMEOUT_SECONDS", 0.2)
    async with engine.connect() as first, engine.connect() as second:
        await first.execute(insert(items).values(name="first"))
        with pytest.raises(sa_exc.OperationalError, match="database is locked"):
            await second.execute(insert(items).values(name="second"))
        await second.rollback()
        await first.commit()
        await second.execute(insert(items).values(name="second"))  # its turn now
        await second.commit()


async def test_a_connection_invalidated_mid_transaction_gives_its_turn_back(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    turn = WRITE_TURNS.lock(str(tmp_path / "driver.db"))
    async with engine.connect() as connection:
        await connection.execute(insert(items).values(name="a"))
        assert turn.locked()
        await connection.invalidate()
        assert not turn.locked()
    async with engine.begin() as connection:
        await connection.execute(insert(items).values(name="b"))


async def test_a_read_never_waits_for_another_connections_write_turn(engine: AsyncEngine) -> None:
    """WAL lets reads run beside a writer; a CTE is a read too (the lists' counts use them)."""
    total = select(items.c.id).cte("total")
    async with engine.connect() as writer, engine.connect() as reader:
        await writer.execute(insert(items).values(name="held"))
        async with asyncio.timeout(1):
            assert (await reader.execute(select(items.c.name))).all() == []
            assert (await reader.execute(select(total.c.id))).all() == []
        await writer.commit()
