"""The partner daily summary and the overdue reminders (issue 13, item 2): the workflows the
Schedules start, driven at chosen moments, on a real worker, sending through a real in-process
SMTP server (aiosmtpd). The tasks are read-model rows, which is all these jobs read."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from aiosmtplib import SMTPRecipientsRefused
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities.digests import DigestActivities
from activities.mail import SmtpPool
from domain.digests import (
    DigestCounts,
    DigestInput,
    DigestPage,
    reminder_period,
    summary_window,
)
from domain.enums import OrgKind
from domain.tasks import CATALOGUE, AccessLevel, Scope, TaskType, solution_url
from mail.sink import KeepInDirectory, list_messages, read_message
from store import accounts
from store.db import transaction
from store.models import DailySummaryMark, OverdueReminderMark, TaskRow, User
from tests.mail.conftest import PORTAL, Sink, mail_activities, partner_wrote, start
from worker import build_worker
from workflows.digests import DailySummaryWorkflow, OverdueReminderWorkflow

# 07:30 in Copenhagen (UTC+1 in December): the morning hour (7) has come there.
MORNING = dt.datetime(2026, 12, 2, 6, 30, tzinfo=dt.UTC)


@pytest.fixture
async def digest_worker(
    dev_env: WorkflowEnvironment,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    sink: Sink,
) -> AsyncIterator[Worker]:
    async with build_worker(
        dev_env.client,
        task_queue=task_queue,
        sessions=sessions,
        mail=mail_activities(sessions, sink.port),
    ) as running:
        yield running


async def org(
    sessions: async_sessionmaker[AsyncSession],
    kind: OrgKind,
    *users: str,
    timezone: str = "Europe/Copenhagen",
) -> tuple[uuid.UUID, list[uuid.UUID]]:
    async with transaction(sessions) as session:
        made = await accounts.create_org(
            session=session,
            kind=kind,
            name=f"{kind.value.title()} {uuid.uuid4().hex[:4]}",
            country="DK",
            timezone=timezone,
        )
        ids = [
            (
                await accounts.create_user(
                    session=session, org_id=made.id, email=f"{name}@{kind.value}.example"
                )
            ).id
            for name in users
        ]
    return made.id, ids


async def add_task(
    sessions: async_sessionmaker[AsyncSession],
    owner: uuid.UUID,
    title: str,
    *,
    created: dt.datetime,
    access: AccessLevel = AccessLevel.PARTNER,
    overdue_since: dt.datetime | None = None,
    assignee: uuid.UUID | None = None,
) -> TaskRow:
    task_type = TaskType.UPDATE_CASE_STATUS if access is AccessLevel.PARTNER else TaskType.GENERIC
    case_id = uuid.uuid4()
    deadline = created + dt.timedelta(days=5)
    row = TaskRow(
        id=str(uuid.uuid4()),
        version=1,
        workflow_id=f"case-{case_id}",
        key=title,
        type=task_type.value,
        title=title,
        description="",
        status="Open",
        access_level=access.value,
        scope=Scope.CASE.value,
        owner_org_id=owner,
        case_id=case_id,
        relationship_id=None,
        deadline=overdue_since or deadline,
        sort_deadline=overdue_since or deadline,
        original_deadline=deadline,
        date_created=created,
        date_solved=None,
        overdue_since=overdue_since,
        assignee_id=assignee,
        resolved_by=None,
        case_reference=f"REF-{title[-1]}",
        case_visible=True,
    )
    async with transaction(sessions) as session:
        session.add(row)
    return row


async def run(
    env: WorkflowEnvironment,
    worker: Worker,
    workflow: type[DailySummaryWorkflow | OverdueReminderWorkflow],
    at: dt.datetime,
) -> None:
    result = await env.client.execute_workflow(
        workflow.run,
        DigestInput(at=at),
        id=f"{workflow.__name__}-{uuid.uuid4()}",
        task_queue=worker.task_queue,
        result_type=DigestCounts,
    )
    assert isinstance(result, DigestCounts)


def received(sink: Sink, address: str) -> list[str]:
    """The text bodies ``address`` received, oldest first."""
    bodies = []
    for stored in sorted(list_messages(sink.directory), key=lambda m: m.received):
        if address in stored.to:
            message = read_message(sink.directory, stored.id)
            assert message is not None
            part = message.get_body(preferencelist=("plain",))
            assert part is not None
            bodies.append(part.get_content())
    return bodies


async def test_a_partner_gets_one_morning_summary_of_the_three_new_tasks_and_no_more_that_day(
    dev_env: WorkflowEnvironment,
    digest_worker: Worker,
    sessions: async_sessionmaker[AsyncSession],
    sink: Sink,
) -> None:
    partner, [nina] = await org(sessions, OrgKind.PARTNER, "nina")
    creditor, _ = await org(sessions, OrgKind.CREDITOR, "carl")
    yesterday = MORNING - dt.timedelta(hours=20)
    new = [
        await add_task(sessions, partner, f"Update case status {n}", created=yesterday)
        for n in (1, 2, 3)
    ]
    await add_task(sessions, partner, "Too old 4", created=MORNING - dt.timedelta(hours=25))
    # The creditor's task, created for the same case at the same time: never a partner's.
    await add_task(
        sessions, creditor, "Creditor task 5", created=yesterday, access=AccessLevel.CREDITOR
    )

    await run(dev_env, digest_worker, DailySummaryWorkflow, MORNING - dt.timedelta(hours=1))
    assert sink.received() == 0, "06:30 in Copenhagen is before the morning hour"

    await run(dev_env, digest_worker, DailySummaryWorkflow, MORNING)
    [body] = received(sink, "nina@partner.example")
    for task in new:
        assert task.title in body and f"case {task.case_reference}" in body
        assert (
            solution_url(
                PORTAL,
                CATALOGUE[TaskType.UPDATE_CASE_STATUS],
                task_id=task.id,
                case_id=task.case_id,
            )
            in body
        )
        assert task.deadline is not None and task.deadline.date().isoformat() in body
    assert "3 new tasks were created" in body
    assert "Too old" not in body and "Creditor task" not in body
    assert sink.received() == 1

    # A later run the same morning (another hour, or one overlapping), and a re-run that finds
    # no mark (as after a crash between sending and marking): nothing more.
    await run(dev_env, digest_worker, DailySummaryWorkflow, MORNING + dt.timedelta(hours=1))
    async with transaction(sessions) as session:
        await session.execute(delete(DailySummaryMark).where(DailySummaryMark.user_id == nina))
    await run(dev_env, digest_worker, DailySummaryWorkflow, MORNING + dt.timedelta(hours=2))
    assert sink.received() == 1

    # The next morning: no task was created since, so no summary.
    await run(dev_env, digest_worker, DailySummaryWorkflow, MORNING + dt.timedelta(days=1))
    assert sink.received() == 1


async def test_a_users_own_time_zone_sets_their_morning_and_a_missed_hour_is_caught_up(
    dev_env: WorkflowEnvironment,
    digest_worker: Worker,
    sessions: async_sessionmaker[AsyncSession],
    sink: Sink,
) -> None:
    partner, [_, otto] = await org(sessions, OrgKind.PARTNER, "nina", "otto")
    async with transaction(sessions) as session:
        await session.execute(
            update(User).where(User.id == otto).values(timezone="America/New_York")
        )
    await add_task(
        sessions, partner, "Update case status 1", created=MORNING - dt.timedelta(hours=3)
    )

    await run(dev_env, digest_worker, DailySummaryWorkflow, MORNING)
    assert len(received(sink, "nina@partner.example")) == 1
    assert received(sink, "otto@partner.example") == [], "01:30 in New York"
    # 07:00 in New York is 12:00 UTC; the runs from then until 16:00 did not happen (an outage):
    # the 16:00 run sends otto's summary, of the 24 hours before his morning.
    await run(dev_env, digest_worker, DailySummaryWorkflow, MORNING + dt.timedelta(hours=9.5))
    [body] = received(sink, "otto@partner.example")
    assert "Update case status 1" in body and "2026-12-02" in body
    assert sink.received() == 2


async def test_overdue_reminders_come_once_every_7_days_and_stop_once_the_tasks_are_solved(
    dev_env: WorkflowEnvironment,
    digest_worker: Worker,
    sessions: async_sessionmaker[AsyncSession],
    sink: Sink,
) -> None:
    creditor, [anna, _] = await org(sessions, OrgKind.CREDITOR, "anna", "ben")
    # Another organisation's task assigned to one of its users: reminds only that user.
    other, [xena, _] = await org(sessions, OrgKind.PARTNER, "xena", "yuri")
    start = dt.datetime(2026, 12, 1, 6, tzinfo=dt.UTC)
    created = start - dt.timedelta(days=10)
    since = start - dt.timedelta(days=1)
    shared = await add_task(
        sessions,
        creditor,
        "Review partner 1",
        created=created,
        overdue_since=since,
        access=AccessLevel.CREDITOR,
    )
    annas = await add_task(
        sessions,
        creditor,
        "Record payment 2",
        created=created,
        overdue_since=since,
        access=AccessLevel.CREDITOR,
        assignee=anna,
    )
    await add_task(
        sessions,
        other,
        "Update case status 3",
        created=created,
        overdue_since=since,
        assignee=xena,
    )
    # Not overdue: not in any reminder.
    await add_task(sessions, creditor, "Generic 4", created=created, access=AccessLevel.CREDITOR)

    for day in range(15):
        await run(dev_env, digest_worker, OverdueReminderWorkflow, start + dt.timedelta(days=day))
    to_anna = received(sink, "anna@creditor.example")
    to_ben = received(sink, "ben@creditor.example")
    assert len(to_anna) == 3 and len(to_ben) == 3, "days 0, 7 and 14"
    assert all(shared.title in b and annas.title in b for b in to_anna)
    assert all(shared.title in b and annas.title not in b for b in to_ben)
    assert all("Generic 4" not in b for b in to_anna + to_ben)
    assert len(received(sink, "xena@partner.example")) == 3
    assert received(sink, "yuri@partner.example") == []
    assert sink.received() == 9

    # Solved: none after, though another 7 days pass.
    async with transaction(sessions) as session:
        await session.execute(update(TaskRow).values(status="Solved", date_solved=start))
    for day in range(15, 23):
        await run(dev_env, digest_worker, OverdueReminderWorkflow, start + dt.timedelta(days=day))
    assert sink.received() == 9


def test_the_summary_day_is_the_users_local_morning_and_its_24_hours_before() -> None:
    assert summary_window("Europe/Copenhagen", MORNING - dt.timedelta(hours=1), 7) is None
    day = summary_window("Europe/Copenhagen", MORNING, 7)
    assert day is not None and day.local_date == dt.date(2026, 12, 2)
    assert day.end == dt.datetime(2026, 12, 2, 6, tzinfo=dt.UTC)
    assert day.end - day.start == dt.timedelta(hours=24)
    # Late in the evening the same local day is still due (a catch-up), with the same window.
    assert summary_window("Europe/Copenhagen", MORNING + dt.timedelta(hours=16), 7) == day
    # Just after midnight in Tokyo it is the next local date, before its morning.
    assert summary_window("Asia/Tokyo", dt.datetime(2026, 12, 2, 15, 30, tzinfo=dt.UTC), 7) is None


def test_a_reminder_period_lasts_7_days_and_an_unsent_one_is_finished_not_restarted() -> None:
    today = dt.date(2026, 12, 10)
    assert reminder_period(today, None, False) == today
    assert reminder_period(today, today - dt.timedelta(days=6), True) is None
    assert reminder_period(today, today - dt.timedelta(days=7), True) == today
    started = today - dt.timedelta(days=2)
    assert reminder_period(today, started, False) == started


async def test_a_reminder_whose_run_failed_before_it_was_marked_is_finished_never_doubled(
    dev_env: WorkflowEnvironment,
    digest_worker: Worker,
    sessions: async_sessionmaker[AsyncSession],
    sink: Sink,
) -> None:
    creditor, [anna] = await org(sessions, OrgKind.CREDITOR, "anna")
    start = dt.datetime(2026, 12, 1, 6, tzinfo=dt.UTC)
    await add_task(
        sessions,
        creditor,
        "Review partner 1",
        created=start - dt.timedelta(days=10),
        overdue_since=start - dt.timedelta(days=1),
        access=AccessLevel.CREDITOR,
    )
    await run(dev_env, digest_worker, OverdueReminderWorkflow, start)
    # As if the run had died after the SMTP server took the e-mail and before it was marked.
    async with transaction(sessions) as session:
        await session.execute(
            update(OverdueReminderMark)
            .where(OverdueReminderMark.user_id == anna)
            .values(sent=False)
        )
    await run(dev_env, digest_worker, OverdueReminderWorkflow, start + dt.timedelta(days=1))
    assert sink.received() == 1, "the next day finishes day 0's reminder: already sent"
    async with sessions() as session:
        mark = await session.get(OverdueReminderMark, anna)
    assert mark is not None and (mark.period_start, mark.sent) == (start.date(), True)
    await run(dev_env, digest_worker, OverdueReminderWorkflow, start + dt.timedelta(days=7))
    assert sink.received() == 2


class ClosesAfterEachMessage(KeepInDirectory):
    """A server that hangs up after every message (as servers limiting messages per
    connection do)."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        answer = await super().handle_DATA(server, session, envelope)
        asyncio.get_running_loop().call_soon(server.transport.close)
        return answer


async def test_pooled_sends_reconnect_when_the_server_hangs_up_and_send_each_copy_once(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    handler = ClosesAfterEachMessage(tmp_path / "mail")
    server, port = await start(handler)
    async with server:
        mail = mail_activities(sessions, port)
        emails = [partner_wrote(f"user{n}@creditor.example", key=f"k-{n}") for n in range(4)]
        async with SmtpPool(mail, 1) as pool:
            results = [await ActivityEnvironment().run(pool.deliver, e) for e in emails]
        assert [r.sent for r in results] == [1, 1, 1, 1]
        async with SmtpPool(mail, 2) as pool:
            again = [await ActivityEnvironment().run(pool.deliver, e) for e in emails]
        assert [r.already_sent for r in again] == [1, 1, 1, 1]
    assert sorted(m.to for m in list_messages(handler.directory)) == sorted(
        f"User{n} <user{n}@creditor.example>" for n in range(4)
    )


class RefusesOneForNow(KeepInDirectory):
    """Refuses ``refused@...`` for now (a 4xx: retried later) at once; takes its time with
    every other recipient, so their conversations are under way when the refusal comes."""

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.startswith("refused@"):
            return "451 4.3.0 try again later"
        await asyncio.sleep(0.5)
        envelope.rcpt_tos.append(address)
        return "250 OK"


async def test_a_page_whose_one_email_fails_sends_and_marks_the_others_then_fails(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    partner, users = await org(sessions, OrgKind.PARTNER, "refused", "a", "b", "c", "d")
    await add_task(sessions, partner, "Update case status 1", created=MORNING - dt.timedelta(1))
    handler = RefusesOneForNow(tmp_path / "mail")
    server, port = await start(handler)
    async with server:
        digests = DigestActivities(
            sessions, mail_activities(sessions, port), morning_hour=7, send_concurrency=8
        )
        page = DigestPage(at=MORNING, after=None, size=10)
        with pytest.raises(SMTPRecipientsRefused):
            await ActivityEnvironment().run(digests.send_daily_summaries, page)
        # The others' conversations were not cut short: they got theirs, and their days are
        # marked, so the page's retry has only the refused one left to send.
        got = sorted(m.to.rpartition("<")[2].rstrip(">") for m in list_messages(handler.directory))
        assert got == [f"{n}@partner.example" for n in "abcd"]
        async with sessions() as session:
            marked = set((await session.scalars(select(DailySummaryMark.user_id))).all())
        assert marked == set(users[1:])
