"""caseloop's SQLite driver for SQLAlchemy's asyncio engine: aiosqlite, one trip to the
connection's thread per statement.

aiosqlite runs each ``sqlite3`` connection in a thread of its own and reaches it through a
queue: every call is a round trip (a queue put, the thread's wake-up, then a
``call_soon_threadsafe`` that wakes the event loop through its self-pipe). SQLAlchemy's
``sqlite+aiosqlite`` adapter makes one such call per DBAPI step, so a statement costs three
(``cursor()``, ``execute()``, ``close()``) or, when it returns rows, four (``fetchall()`` too).

This dialect (``sqlite+caseloop``, which ``store.db.create_engine`` uses for every SQLite URL) is
SQLAlchemy's aiosqlite dialect with another cursor: ``execute()`` and ``executemany()`` send one
function to the connection's thread that opens a ``sqlite3`` cursor, runs the statement, fetches
every row it returns, notes its description, rowcount and lastrowid, and closes it. The cursor
SQLAlchemy holds is then a buffer in the event loop's thread; nothing else it does crosses
threads. A COMMIT or ROLLBACK is one trip, and none when SQLite has no transaction open
(``do_commit``, ``do_rollback``). Everything else is SQLAlchemy's aiosqlite dialect unchanged:
connecting, the pool classes it picks (StaticPool for ``:memory:``), server-side cursors
(``stream()``), isolation levels, terminate, and how errors map (the ``sqlite3`` exception
raised in the thread reaches SQLAlchemy, which wraps it as ``OperationalError``,
``IntegrityError`` and so on; a closed connection is a disconnect).

**Writers take turns in the process.** SQLite lets one connection write at a time. One that
finds the database locked waits in SQLite's busy handler, which sleeps 1, 2, 5, 10, 15... ms
between tries: it wakes late, and waiters are not served in order. Under concurrent
projections (the worker at `bench fullcase --concurrency 8`) that made a write statement wait
about 6 ms for 0.15 ms of work. So each connection of this driver takes its process's write
turn for its database file (``WriteTurns``: an ``asyncio.Lock`` per event loop and file) before
a statement that opens a write transaction, and gives it back as soon as SQLite has no
transaction open (after the COMMIT or ROLLBACK, after a statement that did not open one, or when
the connection closes). Writers of one process then queue in order and start as the previous
one commits; SQLite's busy handler is left only for writers of other processes (the API and
the worker). A turn not had within the busy timeout (``BUSY_TIMEOUT_SECONDS``, as the
pragma's) fails the statement as SQLite would, ``database is locked``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import sqlite3
import weakref
from threading import Thread
from typing import Any

from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
    SQLiteDialect_aiosqlite,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

DRIVER_NAME = "sqlite+caseloop"
# How long a writer waits for the database: SQLite's busy timeout (store.db's pragma) and the
# process's write turn alike.
BUSY_TIMEOUT_SECONDS = 10
# Statements before which sqlite3 opens a write transaction. Not WITH: the read model's CTEs are
# reads, which must never queue behind a writer (WAL lets them run beside it); a writing WITH,
# or a write inside a transaction a SAVEPOINT opened, waits in SQLite's busy handler as before.
_WRITE_HEADS = ("INSERT", "UPDATE", "DELETE", "REPLACE", "BEGIN")


class WriteTurns:
    """The write turn of each database file in each event loop (the module's docstring)."""

    def __init__(self) -> None:
        self._locks: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, asyncio.Lock]
        ] = weakref.WeakKeyDictionary()

    def lock(self, database: str) -> asyncio.Lock:
        per_file = self._locks.setdefault(asyncio.get_running_loop(), {})
        return per_file.setdefault(database, asyncio.Lock())


WRITE_TURNS = WriteTurns()


def _writes(operation: Any) -> bool:
    return str(operation).lstrip()[:7].upper().startswith(_WRITE_HEADS)


async def _take(lock: asyncio.Lock) -> None:
    try:
        await asyncio.wait_for(lock.acquire(), BUSY_TIMEOUT_SECONDS)
    except TimeoutError:
        raise sqlite3.OperationalError("database is locked") from None


# What one trip to the thread brings back: description, rows, rowcount, lastrowid.
_Outcome = tuple[Any, list[Any], int, int | None]


def _run(connection: sqlite3.Connection, operation: Any, parameters: Any, many: bool) -> _Outcome:
    """Run in the connection's thread: one statement from cursor to close."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A client-side cursor whose statement crosses to the connection's thread once.

    The rows are buffered as SQLAlchemy's own adapter buffers them (it fetches all rows of a
    client-side cursor right after ``execute``); ``fetchone``/``fetchmany``/``fetchall`` and
    iteration are the base class's, over that buffer."""

    __slots__ = ("_arraysize", "_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        # Not the base class's __init__: that opens an aiosqlite cursor, a trip of its own.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]  # no aiosqlite cursor behind this one
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._arraysize = 1  # sqlite3's default

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    def _trip(self, operation: Any, parameters: Any, many: bool) -> None:
        aiosqlite_connection = self._connection
        adapted: OneTripConnection = self._adapt_connection  # type: ignore[assignment]
        try:
            if _writes(operation):
                adapted._take_write_turn()
            outcome: _Outcome = await_(
                aiosqlite_connection._execute(
                    _run,
                    aiosqlite_connection._conn,
                    operation,
                    parameters,
                    many,
                )
            )
        except Exception as error:
            adapted._end_write_turn_unless_writing()
            self._adapt_connection._handle_exception(error)
        adapted._end_write_turn_unless_writing()
        description, rows, self._rowcount, self._lastrowid = outcome
        self._description = description
        self._rows = collections.deque(rows)

    def execute(self, operation: Any, parameters: Any = None) -> None:
        self._trip(operation, parameters, many=False)

    def executemany(self, operation: Any, seq_of_parameters: Any) -> None:
        self._trip(operation, seq_of_parameters, many=True)

    async def _async_soft_close(self) -> None:
        """Nothing to close: the sqlite3 cursor closed in the thread with its statement."""

    def close(self) -> None:
        self._rows.clear()

    def setinputsizes(self, *inputsizes: Any) -> None:
        """sqlite3 ignores input sizes."""


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    """The adapted connection, taking its process's write turn while it writes."""

    # The database file (the write turn's key; None in memory: one connection, nobody to wait
    # for), and the turn while this connection holds it.
    __slots__ = ("_database", "_turn")
    _cursor_cls = OneTripCursor  # type: ignore[assignment]  # a subclass of the base's

    def __init__(self, dbapi: Any, connection: Any, database: str | None) -> None:
        super().__init__(dbapi, connection)
        self._database = database
        self._turn: asyncio.Lock | None = None

    def _take_write_turn(self) -> None:
        if self._database is None:
            return
        if self._turn is None and not self._connection._conn.in_transaction:
            lock = WRITE_TURNS.lock(self._database)
            await_(_take(lock))
            self._turn = lock

    def _end_write_turn_unless_writing(self) -> None:
        """Give the turn back once SQLite has no transaction open on this connection."""
        if self._turn is not None:
            sqlite_connection = self._connection._connection
            if sqlite_connection is None or not sqlite_connection.in_transaction:
                self._end_write_turn()

    def _end_write_turn(self) -> None:
        turn, self._turn = self._turn, None
        if turn is not None and turn.locked():
            with contextlib.suppress(RuntimeError):  # a loop already closed (collected late)
                turn.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._end_write_turn_unless_writing()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._end_write_turn_unless_writing()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._end_write_turn()

    async def _terminate_graceful_close(self) -> None:
        try:
            await super()._terminate_graceful_close()
        finally:
            self._end_write_turn()

    def _terminate_force_close(self) -> None:
        try:
            super()._terminate_force_close()
        finally:
            self._end_write_turn()


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        database: str | None = str(arg[0] if arg else kw.get("database", ""))
        if database in ("", ":memory:") or "mode=memory" in (database or ""):
            database = None
        creator_fn = kw.pop("async_creator_fn", None)
        if creator_fn:
            connection = creator_fn(*arg, **kw)
        else:
            connection = self.aiosqlite.connect(*arg, **kw)
            # aiosqlite's thread must not keep the process alive (as SQLAlchemy's adapter does).
            thread = connection if isinstance(connection, Thread) else connection._thread
            thread.daemon = True
        return OneTripConnection(self, await_(connection), database)


class SQLiteDialect_caseloop(SQLiteDialect_aiosqlite):
    """SQLAlchemy's aiosqlite dialect with one thread trip per statement (the module's docstring)."""

    supports_statement_cache = True

    @classmethod
    def import_dbapi(cls) -> OneTripDBAPI:
        import aiosqlite

        return OneTripDBAPI(aiosqlite, sqlite3)

    def do_commit(self, dbapi_connection: Any) -> None:
        """COMMIT only when SQLite has a transaction open.

        The sqlite3 module starts a transaction only before a write, and its ``commit()`` does
        nothing without one; through aiosqlite it is still a round trip through the driver's
        thread. SQLAlchemy ends every transaction it began, reads alone included: the read a
        write action ends before it waits on a workflow, the session of a request that only
        read. SQLite says itself whether a transaction is open (``in_transaction``, as
        ``store.db._sqlite_reset`` asks). SQLAlchemy's own events (``commit``, ``rollback``)
        still fire; only the call that would do nothing is skipped."""
        if dbapi_connection.driver_connection.in_transaction:
            super().do_commit(dbapi_connection)

    def do_rollback(self, dbapi_connection: Any) -> None:
        """ROLLBACK only when SQLite has a transaction open (as ``do_commit``)."""
        if dbapi_connection.driver_connection.in_transaction:
            super().do_rollback(dbapi_connection)


registry.register("sqlite.caseloop", __name__, "SQLiteDialect_caseloop")
dialect = SQLiteDialect_caseloop
