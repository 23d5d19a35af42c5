"""A SQLite connection returning to the pool is rolled back only when a transaction is open
(``store.db._sqlite_reset``): never a transaction left to the next request, and no round trip
through the driver's thread after a commit."""

from __future__ import annotations

from pathlib import Path

import aiosqlite
import pytest

from store.db import create_engine


async def test_a_sqlite_connection_returned_mid_transaction_is_rolled_back_and_after_commit_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rollbacks: list[object] = []
    original = aiosqlite.Connection.rollback

    async def counted(self: aiosqlite.Connection) -> None:
        rollbacks.append(self)
        await original(self)

    monkeypatch.setattr(aiosqlite.Connection, "rollback", counted)
    engine = create_engine(f"sqlite:///{tmp_path / 'reset.db'}", pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as connection:
            await connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
            await connection.commit()
        rollbacks.clear()  # SQLAlchemy rolls back once as it first connects
        async with engine.connect() as connection:
            await connection.exec_driver_sql("INSERT INTO t VALUES (0)")
            await connection.exec_driver_sql("DELETE FROM t")
            await connection.commit()
        assert rollbacks == []  # committed: nothing to roll back on checkin

        connection = await engine.connect()
        raw = await connection.get_raw_connection()
        # A write SQLAlchemy's Connection does not know of, as a crashed request could leave.
        await raw.driver_connection.execute("INSERT INTO t VALUES (1)")
        assert raw.driver_connection.in_transaction
        await connection.close()
        assert len(rollbacks) == 1

        async with engine.connect() as again:  # the same pooled connection (pool_size=1)
            count = (await again.exec_driver_sql("SELECT count(*) FROM t")).scalar()
        assert count == 0
    finally:
        await engine.dispose()


async def test_a_sqlite_transaction_that_only_read_ends_without_a_round_trip_and_a_write_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``store.sqlite_driver.SQLiteDialect_caseloop.do_commit`` and ``do_rollback``: SQLite
    opened no transaction for a read, so its COMMIT or ROLLBACK is not sent through the
    driver's thread; a write's still is."""
    ended: list[str] = []
    for name in ("commit", "rollback"):
        original = getattr(aiosqlite.Connection, name)

        def counting(original: object = original, name: str = name) -> object:
            async def counted(self: aiosqlite.Connection) -> None:
                ended.append(name)
                await original(self)  # type: ignore[operator]

            return counted

        monkeypatch.setattr(aiosqlite.Connection, name, counting())
    engine = create_engine(f"sqlite:///{tmp_path / 'ends.db'}", pool_size=1, max_overflow=0)
    try:
        async with engine.begin() as connection:
            await connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        ended.clear()
        for end in ("commit", "rollback"):
            async with engine.connect() as connection:
                await connection.exec_driver_sql("SELECT count(*) FROM t")
                await getattr(connection, end)()
        assert ended == []
        async with engine.connect() as connection:
            await connection.exec_driver_sql("INSERT INTO t VALUES (1)")
            await connection.rollback()
            await connection.exec_driver_sql("INSERT INTO t VALUES (2)")
            await connection.commit()
        assert ended == ["rollback", "commit"]
        async with engine.connect() as connection:
            values = (await connection.exec_driver_sql("SELECT x FROM t")).scalars().all()
        assert values == [2]
    finally:
        await engine.dispose()
