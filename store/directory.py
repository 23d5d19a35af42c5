"""Who is who: the caller's organisation (``GET /api/me``) and its users (``GET /api/users``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import Organisation, User


async def organisation(*, session: AsyncSession, org_id: uuid.UUID) -> Organisation | None:
    return await session.get(Organisation, org_id)


@dataclass(frozen=True)
class UserPage:
    total: int
    users: list[User]


async def list_users(
    *, session: AsyncSession, org_id: uuid.UUID, offset: int, limit: int
) -> UserPage:
    """The active users of organisation ``org_id`` (deactivated ones cannot act or be named),
    oldest first, then by id: a stable order for paging."""
    where = (User.org_id == org_id, User.active.is_(True))
    total = await session.scalar(select(func.count()).select_from(User).where(*where))
    rows = await session.scalars(
        select(User).where(*where).order_by(User.created_at, User.id).offset(offset).limit(limit)
    )
    return UserPage(total or 0, list(rows))


async def active_user_named(
    *,
    session: AsyncSession,
    org_id: uuid.UUID,
    user_id: uuid.UUID | None = None,
    email: str | None = None,
) -> User | None:
    """The active user of organisation ``org_id`` with that id, or that e-mail (compared
    without case), or None."""
    where = [User.org_id == org_id, User.active.is_(True)]
    if user_id is not None:
        where.append(User.id == user_id)
    if email is not None:
        where.append(func.lower(User.email) == email.lower())
    return await session.scalar(select(User).where(*where))
