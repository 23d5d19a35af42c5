"""Which e-mail categories each user gets (issue 13, item 4): every category is on until the
user turns it off. Rows hold the choices made (``notification_preferences``); a category
without a row is on, so a category added later reaches everyone until they turn it off.

Written by the API (``PUT /api/me/notification-preferences``, which the portal's preferences
page calls) and the unsubscribe link; read by the ``send_email`` activity, once per e-mail
for all its recipients (``turned_off``).
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert

from domain.mail import MailCategory
from store.models import NotificationPreference


async def preferences_of(*, session: AsyncSession, user_id: uuid.UUID) -> dict[MailCategory, bool]:
    """Every category, on or off for ``user_id``, in the catalogue's order."""
    rows = await session.execute(
        select(NotificationPreference.category, NotificationPreference.enabled).where(
            NotificationPreference.user_id == user_id
        )
    )
    chosen = {category: enabled for category, enabled in rows}
    return {category: chosen.get(category.value, True) for category in MailCategory}


@functools.cache
def _upsert(dialect: str) -> Insert:
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(
        NotificationPreference
    )
    return insert.on_conflict_do_update(
        index_elements=["user_id", "category"],
        set_={"enabled": insert.excluded.enabled, "updated_at": insert.excluded.updated_at},
    )


async def set_preferences(
    *,
    session: AsyncSession,
    user_id: uuid.UUID,
    choices: Mapping[MailCategory, bool],
    now: dt.datetime,
) -> None:
    """Turn each category of ``choices`` on or off for ``user_id``; the others stay as they are.
    The caller commits."""
    if not choices:
        return
    await session.execute(
        _upsert(session.get_bind().dialect.name),
        [
            {"user_id": user_id, "category": category.value, "enabled": enabled, "updated_at": now}
            for category, enabled in choices.items()
        ],
    )


async def turned_off(
    *, session: AsyncSession, user_ids: Iterable[uuid.UUID], category: MailCategory
) -> set[uuid.UUID]:
    """Those of ``user_ids`` who turned ``category`` off: one statement for them all."""
    wanted = set(user_ids)
    if not wanted:
        return set()
    rows = await session.execute(
        select(NotificationPreference.user_id).where(
            NotificationPreference.category == category.value,
            NotificationPreference.enabled.is_(False),
            NotificationPreference.user_id.in_(wanted),
        )
    )
    return set(rows.scalars())
