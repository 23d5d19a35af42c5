"""Who an e-mail about an organisation's work goes to (SPEC.md "Notifications"): the user
it is assigned to, or else the organisation's active users. Every rule that e-mails about a
task or a case asks here (the ladder, a partner's messages, the bank-account digest), so the
rule is written once; the daily jobs (activities/digests.py) apply the same rule to thousands of
users at a time in their own batched queries.

Only active users of that one organisation are ever named: a partner never hears of a
creditor's work, nor a creditor of a partner's.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.mail import Recipient
from store.models import User

logger = logging.getLogger(__name__)


async def recipients(
    session: AsyncSession, org_id: uuid.UUID, *, assigned: Collection[uuid.UUID] = ()
) -> list[Recipient]:
    """The active users of ``org_id`` among ``assigned`` (a task's assignee, the assignees of
    a case's open tasks); when none of those is an active user of it, all its active users.
    Oldest user first, each address once; an address the mail model refuses is left out
    (logged by user id), so one bad address never holds the others' e-mail back."""
    query = select(User).where(User.org_id == org_id, User.active.is_(True))
    users = list(await session.scalars(query.where(User.id.in_(assigned)))) if assigned else []
    if not users:
        users = list(await session.scalars(query))
    users.sort(key=lambda user: (user.created_at, user.id))
    found: list[Recipient] = []
    seen: set[str] = set()
    for user in users:
        if user.email.lower() in seen:  # each address once (``Email.to``)
            continue
        seen.add(user.email.lower())
        try:
            found.append(Recipient(email=user.email, name=user.name, user_id=user.id))
        except ValidationError:
            logger.warning("user %s has an address mail refuses; left out", user.id)
    return found
