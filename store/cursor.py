"""Opaque positions in an ordered list (``after=`` cursors, docs/api.md "Pagination").

A cursor is the sort key of the last item a page showed, with the name of the list it belongs
to, as URL-safe base64 of a small JSON document. It holds ids and timestamps only, never text a
user typed. Anything that does not decode to that shape is a ``CursorError`` (the API says 422).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Integer, Select, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession


class CursorError(ValueError):
    """Not a cursor this API gave out."""


@dataclass(frozen=True)
class Cursor:
    list_name: str  # "tasks" or "cases": a cursor works only for the list that made it
    key: tuple[str, ...]  # the sort key of the last item shown, as strings


def encode_cursor(list_name: str, key: tuple[str, ...]) -> str:
    raw = json.dumps([list_name, *key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(text: str) -> Cursor:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        value: Any = json.loads(raw)
    except (binascii.Error, ValueError):
        raise CursorError(text) from None
    if (
        not isinstance(value, list)
        or len(value) < 2
        or not all(isinstance(part, str) for part in value)
    ):
        raise CursorError(text)
    return Cursor(value[0], tuple(value[1:]))


def timestamp(text: str) -> dt.datetime:
    """A cursor's timestamp: ISO 8601 with an offset."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise CursorError(text) from None
    if moment.tzinfo is None:
        raise CursorError(text)
    return moment


def uuid_of(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise CursorError(text) from None


def key_of(cursor: Cursor, list_name: str, length: int) -> tuple[str, ...]:
    """The cursor's key if it belongs to ``list_name`` and has ``length`` parts."""
    if cursor.list_name != list_name or len(cursor.key) != length:
        raise CursorError(cursor.list_name)
    return cursor.key


COUNT_LIMIT_PARAM = "count_limit"


def bounded_count(*queries: Select[Any]) -> ColumnElement[int]:
    """The rows of ``queries`` together, each counted no further than the bound parameter
    ``count_limit``, as a scalar a page query selects next to its rows and tests for ``> 0``
    (``counted``). It is a CTE, so the database counts once however often it is named."""
    limit = bindparam(COUNT_LIMIT_PARAM, type_=Integer)
    counts = [
        select(func.count()).select_from(query.limit(limit).subquery()).scalar_subquery()
        for query in queries
    ]
    total: ColumnElement[int] = counts[0]
    for count in counts[1:]:
        total = total + count
    cte = select(total.label("n")).cte("total")
    return select(cte.c.n).scalar_subquery()


Rows = Select[*tuple[Any, ...]]  # a select of any columns


def counted(page: Rows, total: ColumnElement[int]) -> Rows:
    """``page`` with the bounded ``total`` as its last column, read only when it is not 0:
    the page and its count in one statement, one round trip. When nothing matches, the
    database skips the page (a one-time filter) instead of walking an index for nothing."""
    return page.add_columns(total.label("total")).where(total > 0)


async def start_read(session: AsyncSession) -> None:
    """Let a read of one statement run outside a transaction (PostgreSQL: autocommit), so it
    costs one round trip, not three (BEGIN, the statement, ROLLBACK). A single statement reads
    one snapshot either way. Inside a transaction already begun, the read joins it."""
    if session.in_transaction() or session.bind is None:
        return
    if session.bind.dialect.name == "postgresql":
        await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
