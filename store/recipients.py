"""Who an e-mail about an organisation's work goes to (SPEC.md "Notifications"): the user
it is assigned to, or else the organisation's active users. Every rule that e-mails about a
task or a case asks here: the ladder, a partner's messages and the bank-account digest one
organisation at a time (``recipients``), the daily jobs (activities/digests.py) for the tasks
of thousands of users at a time (``audiences``, a few statements for them all). Both decide
by ``Audience``, so the rule is written once.

Only active users of that one organisation are ever named: a partner never hears of a
creditor's work, nor a creditor of a partner's. Whether a named user wants the e-mail (their
preferences, an unsubscribe link) is the sender's check (activities/mail.py, ``deliver``),
the same for every rule.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.mail import Recipient
from store.models import User

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Audience:
    """Who hears of a piece of ``org_id``'s work: ``users`` (its assignees who are active
    users of it), or every active user of it when there are none."""

    org_id: uuid.UUID
    users: frozenset[uuid.UUID]

    def includes(self, user_id: uuid.UUID, org_id: uuid.UUID) -> bool:
        """Whether the active user ``user_id`` of ``org_id`` hears of it."""
        return org_id == self.org_id and (not self.users or user_id in self.users)


async def audiences(
    session: AsyncSession, work: Iterable[tuple[uuid.UUID, Collection[uuid.UUID]]]
) -> list[Audience]:
    """The audience of each ``(organisation, its assignees)`` of ``work``, in order: one
    statement for them all (the assignees' memberships), none when nothing is assigned."""
    work = list(work)
    pairs = {(org_id, user_id) for org_id, assigned in work for user_id in assigned}
    members: set[tuple[uuid.UUID, uuid.UUID]] = set()
    if pairs:
        rows = await session.execute(
            select(User.org_id, User.id).where(
                User.active.is_(True), User.id.in_({user_id for _, user_id in pairs})
            )
        )
        members = {(org_id, user_id) for org_id, user_id in rows} & pairs
    return [
        Audience(org_id, frozenset(u for u in assigned if (org_id, u) in members))
        for org_id, assigned in work
    ]


async def recipients(
    session: AsyncSession, org_id: uuid.UUID, *, assigned: Collection[uuid.UUID] = ()
) -> list[Recipient]:
    """The active users of ``org_id`` among ``assigned`` (a task's assignee, the assignees of
    a case's open tasks); when none of those is an active user of it, all its active users.
    Oldest user first, each address once; an address the mail model refuses is left out
    (logged by user id), so one bad address never holds the others' e-mail back."""
    [audience] = await audiences(session, [(org_id, assigned)])
    query = select(User).where(User.org_id == org_id, User.active.is_(True))
    if audience.users:
        query = query.where(User.id.in_(audience.users))
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
