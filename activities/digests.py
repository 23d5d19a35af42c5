"""The digests' side effects (domain/digests.py has the rules): read a page of users and their
tasks in a few set-based queries, build each user's e-mail and send them concurrently (bounded)
through ``MailActivities.deliver``, the ``send_email`` activity's own path: each copy is claimed
in ``sent_emails`` by a ``Message-ID`` derived from the e-mail's idempotency key, so a page
retried after a crash, a re-run or an overlapping run sends no copy twice.

Who hears of which task is store/recipients.py's rule (``audiences``), the same as for every
other e-mail: assigned to them, or to no active user of their organisation.

A page's queries, whatever its size: the users (one), what they were sent (one), their tasks
(one or two) and who hears of them (one, none when no task is assigned); then one write before
sending (overdue reminders: the periods they start) and one after (the marks, also of a page
that failed: of the e-mails it sent before).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import and_, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.mail import MailActivities, SmtpPool
from domain.digests import (
    MAX_TASKS_LISTED,
    SEND_DAILY_SUMMARIES,
    SEND_OVERDUE_REMINDERS,
    DigestCounts,
    DigestPage,
    DigestPageResult,
    SummaryDay,
    reminder_key,
    reminder_period,
    summary_key,
    summary_window,
)
from domain.enums import OrgKind
from domain.mail import Email, MailCategory, Recipient
from domain.tasks import CATALOGUE, AccessLevel, TaskStatus, TaskType, solution_url
from store.db import transaction
from store.models import DailySummaryMark, Organisation, OverdueReminderMark, TaskRow, User
from store.recipients import Audience, audiences


@dataclass(frozen=True)
class _User:
    id: uuid.UUID
    email: str
    name: str | None
    org_id: uuid.UUID
    org_name: str
    timezone: str


@dataclass(frozen=True)
class _Outgoing:
    user: _User
    email: Email | None  # None: nothing to send


class DigestActivities:
    """Activities of ``DailySummaryWorkflow`` and ``OverdueReminderWorkflow``; one per worker.

    ``send_concurrency`` bounds the e-mails a page has in flight (setting
    ``DIGEST_SEND_CONCURRENCY``); ``morning_hour`` is the local hour the daily summary goes out
    from (``DAILY_SUMMARY_HOUR``)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        mail: MailActivities,
        *,
        morning_hour: int,
        send_concurrency: int = 16,
    ) -> None:
        self._sessions = sessions
        self._mail = mail
        self._morning_hour = morning_hour
        self._send_concurrency = send_concurrency

    # -- the partner daily summary ------------------------------------------------------------

    @activity.defn(name=SEND_DAILY_SUMMARIES)
    async def send_daily_summaries(self, page: DigestPage) -> DigestPageResult:
        """Send the summary of each partner user of the page whose morning has come today (in
        their time zone) and whose day is not marked done; mark each day done after. A user's
        summary lists the new tasks they hear of (store/recipients.py: assigned to them, or
        to no active user of their organisation)."""
        async with self._sessions() as session:
            users = await _users(session, page, OrgKind.PARTNER)
            days = {
                tz: summary_window(tz, page.at, self._morning_hour)
                for tz in {u.timezone for u in users}
            }
            due = [(u, day) for u in users if (day := days[u.timezone]) is not None]
            done = await _summaries_done(session, due)
            due = [(u, day) for u, day in due if (u.id, day.local_date) not in done]
            tasks = await _new_partner_tasks(session, due)
            heard = await _audiences_of(session, [t for ts in tasks.values() for t in ts])
        counts = DigestCounts(looked_at=len(users), not_due=len(users) - len(due))
        listings: dict[uuid.UUID, list[TaskRow]] = {}
        outgoing = []
        for user, day in due:
            new = listings[user.id] = [
                t
                for t in tasks.get(user.org_id, [])
                if day.start <= t.date_created < day.end
                and heard[t.id].includes(user.id, user.org_id)
            ]
            if not new:
                outgoing.append(_Outgoing(user, None))
            elif email := _addressed(partial(self._summary, user, day, new), user, counts):
                outgoing.append(_Outgoing(user, email))
        marks, error = await self._send(outgoing, counts)
        if marks:  # a page that failed marks the days it finished; its retry does the rest
            async with transaction(self._sessions) as session:
                await _mark_summaries(session, [(u, days[u.timezone]) for u in marks], listings)
        if error is not None:
            raise error
        return DigestPageResult(counts=counts, next=_next(users, page))

    def _summary(self, user: _User, day: SummaryDay, tasks: list[TaskRow]) -> Email:
        count = len(tasks)
        return Email(
            idempotency_key=summary_key(user.id, day.local_date),
            category=MailCategory.DAILY_SUMMARY,
            to=[Recipient(email=user.email, name=user.name, user_id=user.id)],
            subject=f"{count} new task{'' if count == 1 else 's'} for {user.org_name}",
            template="daily_summary",
            context={
                "org_name": user.org_name,
                "date": day.local_date.isoformat(),
                "count": count,
                "tasks": [self._line(t, user.timezone) for t in tasks[:MAX_TASKS_LISTED]],
                "more": max(0, count - MAX_TASKS_LISTED),
            },
            link=self._tasks_page(),
        )

    # -- overdue reminders --------------------------------------------------------------------

    @activity.defn(name=SEND_OVERDUE_REMINDERS)
    async def send_overdue_reminders(self, page: DigestPage) -> DigestPageResult:
        """Remind each active user of the page who hears of overdue open tasks of their
        organisation (store/recipients.py: assigned to them, or to no active user of it) and
        had no reminder within the interval."""
        today = page.at.astimezone(dt.UTC).date()
        async with self._sessions() as session:
            users = await _users(session, page, None)
            marks = await _reminder_marks(session, users)
            found = await _overdue_tasks(session, users)
        counts = DigestCounts(looked_at=len(users))
        periods: dict[uuid.UUID, dt.date] = {}
        outgoing = []
        for user in users:
            heard = [group for group in found if group.audience.includes(user.id, user.org_id)]
            own = [task for group in heard for task in group.listed]
            if not own:
                counts.nothing_to_send += 1
                continue
            last = marks.get(user.id)
            period = reminder_period(today, *(last or (None, False)))
            if period is None:
                counts.not_due += 1
                continue
            own.sort(key=lambda t: (t.overdue_since or t.date_created, t.id))
            total = sum(group.total for group in heard)
            reminder = partial(self._reminder, user, period, own, total)
            if (email := _addressed(reminder, user, counts)) is not None:
                periods[user.id] = period
                outgoing.append(_Outgoing(user, email))
        if periods:  # before sending: a retry or re-run finishes these periods' reminders
            async with transaction(self._sessions) as session:
                await _start_periods(session, periods, marks)
        sent, error = await self._send(outgoing, counts)
        if sent:  # a page that failed marks the reminders it sent; its retry does the rest
            async with transaction(self._sessions) as session:
                await session.execute(
                    update(OverdueReminderMark)
                    .where(OverdueReminderMark.user_id.in_([u.id for u in sent]))
                    .values(sent=True, updated_at=dt.datetime.now(dt.UTC))
                )
        if error is not None:
            raise error
        return DigestPageResult(counts=counts, next=_next(users, page))

    def _reminder(self, user: _User, period: dt.date, tasks: list[TaskRow], total: int) -> Email:
        return Email(
            idempotency_key=reminder_key(user.id, period),
            category=MailCategory.OVERDUE_REMINDER,
            to=[Recipient(email=user.email, name=user.name, user_id=user.id)],
            subject=f"{total} overdue task{'' if total == 1 else 's'} in {user.org_name}",
            template="overdue_reminder",
            context={
                "org_name": user.org_name,
                "count": total,
                "tasks": [self._line(t, user.timezone) for t in tasks[:MAX_TASKS_LISTED]],
                "more": max(0, total - min(len(tasks), MAX_TASKS_LISTED)),
            },
            link=self._tasks_page(),
        )

    # -- shared -------------------------------------------------------------------------------

    async def _send(
        self, outgoing: Sequence[_Outgoing], counts: DigestCounts
    ) -> tuple[list[_User], Exception | None]:
        """Send the e-mails (``send_concurrency`` at a time, on as many open connections, opened
        when first needed) and count what happened; the users whose e-mail went out (or had
        none to send), and the first error, which fails the page once the marks of those are
        written (it is retried, and its copies already sent are not sent again). An error
        never cuts the other e-mails' conversations short: one cancelled after the server took
        its message and before it was marked sent would be sent again by the retry."""
        done: list[_User] = []
        errors: list[Exception] = []

        async def one(pool: SmtpPool, item: _Outgoing) -> None:
            if item.email is None:
                counts.nothing_to_send += 1
            else:
                try:
                    result = await pool.deliver(item.email)
                except Exception as exc:
                    errors.append(exc)
                    return
                counts.sent += result.sent
                counts.already_sent += result.already_sent + result.refused
            done.append(item.user)
            activity.heartbeat(len(done))

        async with (
            SmtpPool(self._mail, self._send_concurrency) as pool,
            asyncio.TaskGroup() as group,
        ):
            for item in outgoing:
                group.create_task(one(pool, item))
        return done, errors[0] if errors else None

    def _line(self, task: TaskRow, timezone: str) -> dict[str, Any]:
        zone = ZoneInfo(timezone)
        return {
            "title": task.title,
            "case_reference": task.case_reference,
            "deadline": task.deadline.astimezone(zone).date().isoformat()
            if task.deadline
            else None,
            "overdue_since": task.overdue_since.astimezone(zone).date().isoformat()
            if task.overdue_since
            else None,
            "solution_url": solution_url(
                self._mail.portal_base_url,
                CATALOGUE[TaskType(task.type)],
                task_id=task.id,
                case_id=task.case_id,
                relationship_id=task.relationship_id,
            ),
        }

    def _tasks_page(self) -> str:
        return self._mail.portal_base_url.rstrip("/") + "/tasks"


def _addressed(build: Callable[[], Email], user: _User, counts: DigestCounts) -> Email | None:
    """The user's e-mail, or None (counted) if their address is not one an e-mail can go to."""
    try:
        return build()
    except ValidationError:
        activity.logger.warning("user %s has no usable e-mail address: not sent", user.id)
        counts.unaddressable += 1
        return None


def _next(users: list[_User], page: DigestPage) -> uuid.UUID | None:
    return users[-1].id if len(users) == page.size else None


async def _users(session: AsyncSession, page: DigestPage, kind: OrgKind | None) -> list[_User]:
    """The page's active users (of organisations of ``kind``, or of any), in id order, with
    their time zone: their own, else their organisation's."""
    query = (
        select(
            User.id,
            User.email,
            User.name,
            User.org_id,
            Organisation.name,
            func.coalesce(User.timezone, Organisation.timezone),
        )
        .join(Organisation, Organisation.id == User.org_id)
        .where(User.active.is_(True))
        .order_by(User.id)
        .limit(page.size)
    )
    if kind is not None:
        query = query.where(Organisation.kind == kind.value)
    if page.after is not None:
        query = query.where(User.id > page.after)
    return [_User(*row) for row in await session.execute(query)]


async def _summaries_done(
    session: AsyncSession, due: list[tuple[_User, SummaryDay]]
) -> set[tuple[uuid.UUID, dt.date]]:
    if not due:
        return set()
    rows = await session.execute(
        select(DailySummaryMark.user_id, DailySummaryMark.local_date).where(
            DailySummaryMark.user_id.in_([u.id for u, _ in due]),
            DailySummaryMark.local_date.in_({day.local_date for _, day in due}),
        )
    )
    return {(user_id, local_date) for user_id, local_date in rows}


async def _new_partner_tasks(
    session: AsyncSession, due: list[tuple[_User, SummaryDay]]
) -> dict[uuid.UUID, list[TaskRow]]:
    """The open partner-side tasks of the due users' organisations created within any of their
    windows, by organisation, oldest first (each user's window is applied by the caller). Only
    tasks the organisation owns as a partner: never a creditor's."""
    if not due:
        return {}
    rows = await session.scalars(
        select(TaskRow)
        .where(
            TaskRow.owner_org_id.in_({u.org_id for u, _ in due}),
            TaskRow.access_level == AccessLevel.PARTNER.value,
            TaskRow.case_visible.is_(True),
            TaskRow.status == TaskStatus.OPEN.value,
            TaskRow.date_created >= min(day.start for _, day in due),
            TaskRow.date_created < max(day.end for _, day in due),
        )
        .order_by(TaskRow.date_created, TaskRow.id)
    )
    tasks: dict[uuid.UUID, list[TaskRow]] = {}
    for row in rows:
        tasks.setdefault(row.owner_org_id, []).append(row)
    return tasks


async def _mark_summaries(
    session: AsyncSession,
    done: Iterable[tuple[_User, SummaryDay | None]],
    listings: dict[uuid.UUID, list[TaskRow]],
) -> None:
    now = dt.datetime.now(dt.UTC)
    values = []
    for user, day in done:
        assert day is not None
        values.append(
            {
                "user_id": user.id,
                "local_date": day.local_date,
                "tasks": len(listings[user.id]),
                "done_at": now,
            }
        )
    dialect = session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(DailySummaryMark)
    await session.execute(insert.on_conflict_do_nothing(), values)  # an overlapping run's


async def _audiences_of(session: AsyncSession, tasks: list[TaskRow]) -> dict[str, Audience]:
    """Who hears of each task, by task id (store/recipients.py)."""
    found = await audiences(
        session,
        [(t.owner_org_id, [t.assignee_id] if t.assignee_id else []) for t in tasks],
    )
    return {task.id: audience for task, audience in zip(tasks, found, strict=True)}


async def _reminder_marks(
    session: AsyncSession, users: list[_User]
) -> dict[uuid.UUID, tuple[dt.date, bool]]:
    if not users:
        return {}
    rows = await session.execute(
        select(
            OverdueReminderMark.user_id, OverdueReminderMark.period_start, OverdueReminderMark.sent
        ).where(OverdueReminderMark.user_id.in_([u.id for u in users]))
    )
    return {user_id: (start, sent) for user_id, start, sent in rows}


@dataclass(frozen=True)
class _Overdue:
    """The open overdue tasks of one (owner organisation, assignee) and who hears of them."""

    audience: Audience
    listed: list[TaskRow]  # the first MAX_TASKS_LISTED (oldest overdue first)
    total: int


async def _overdue_tasks(session: AsyncSession, users: list[_User]) -> list[_Overdue]:
    """The open overdue tasks of the page's users' organisations, by (owner organisation,
    assignee), each group's first ``MAX_TASKS_LISTED`` and its count, and who hears of it
    (store/recipients.py): a task assigned to one who is no longer an active user of its
    organisation reminds the organisation instead."""
    if not users:
        return []
    relevant = and_(
        TaskRow.status == TaskStatus.OPEN.value,
        TaskRow.overdue_since.is_not(None),
        TaskRow.case_visible.is_(True),
        TaskRow.owner_org_id.in_({u.org_id for u in users}),
    )
    rank = (
        func.row_number()
        .over(
            partition_by=(TaskRow.owner_org_id, TaskRow.assignee_id),
            order_by=(TaskRow.overdue_since, TaskRow.id),
        )
        .label("rank")
    )
    ranked = select(TaskRow.id, rank).where(relevant).subquery()
    listed: dict[tuple[uuid.UUID, uuid.UUID | None], list[TaskRow]] = {}
    for row in await session.scalars(
        select(TaskRow)
        .join(ranked, ranked.c.id == TaskRow.id)
        .where(ranked.c.rank <= MAX_TASKS_LISTED)
    ):
        listed.setdefault((row.owner_org_id, row.assignee_id), []).append(row)
    totals = {
        (org_id, assignee_id): count
        for org_id, assignee_id, count in await session.execute(
            select(TaskRow.owner_org_id, TaskRow.assignee_id, func.count())
            .where(relevant)
            .group_by(TaskRow.owner_org_id, TaskRow.assignee_id)
        )
    }
    groups = list(totals)
    found = await audiences(session, [(org, [a] if a else []) for org, a in groups])
    return [
        _Overdue(audience, listed.get(group, []), totals[group])
        for group, audience in zip(groups, found, strict=True)
    ]


async def _start_periods(
    session: AsyncSession,
    periods: dict[uuid.UUID, dt.date],
    marks: dict[uuid.UUID, tuple[dt.date, bool]],
) -> None:
    now = dt.datetime.now(dt.UTC)
    values = [
        {"user_id": user_id, "period_start": start, "sent": False, "updated_at": now}
        for user_id, start in periods.items()
        if marks.get(user_id, (None, False))[0] != start
    ]
    if not values:
        return
    dialect = session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(OverdueReminderMark)
    excluded = insert.excluded
    await session.execute(
        insert.on_conflict_do_update(
            index_elements=["user_id"],
            set_={"period_start": excluded.period_start, "sent": False, "updated_at": now},
            # an overlapping run that started a later period keeps it
            where=OverdueReminderMark.period_start < excluded.period_start,
        ),
        values,
    )
