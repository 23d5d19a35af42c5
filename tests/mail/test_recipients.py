"""One recipient rule for every e-mail about an organisation's work (store/recipients.py): the
active users of the organisation it is assigned to, or else all its active users; never an
inactive user, never another organisation's. The same on every path: one organisation at a time
(``recipients``: the ladder, a partner's messages, the bank-account digest) and the daily jobs'
pages (``audiences``: the partner daily summary, the overdue reminders, through a real
in-process SMTP server). A user who turned the category off, or unsubscribed through an
e-mail's link, is named by the rule and skipped by the sender."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.enums import OrgKind
from domain.mail import MailCategory
from domain.tasks import AccessLevel
from settings import Settings
from store.db import transaction
from store.models import User
from store.preferences import set_preferences
from store.recipients import audiences, recipients
from tests.mail.conftest import Sink
from tests.mail.test_digests import MORNING, add_task, digest_worker, org, received, run
from tests.mail.test_preferences import browser, mail_settings, sender, unsubscribe_header
from tests.support import reads
from worker import build_worker
from workflows.digests import DailySummaryWorkflow, OverdueReminderWorkflow

__all__ = ["browser", "digest_worker", "mail_settings"]  # fixtures


async def deactivate(sessions: async_sessionmaker[AsyncSession], user_id: uuid.UUID) -> None:
    async with transaction(sessions) as session:
        await session.execute(update(User).where(User.id == user_id).values(active=False))


async def test_the_assignee_else_the_organisations_active_users_on_both_forms(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    creditor, [anna, ben, cleo] = await org(sessions, OrgKind.CREDITOR, "anna", "ben", "cleo")
    partner, [xena] = await org(sessions, OrgKind.PARTNER, "xena")
    await deactivate(sessions, cleo)
    asked = {
        "anna's": [anna],
        "nobody's": [],
        "an inactive user's": [cleo],
        "another organisation's user's": [xena],
        "an unknown user's": [uuid.uuid4()],
        "anna's and cleo's": [anna, cleo],
    }
    wanted = {
        "anna's": {anna},
        "nobody's": {anna, ben},
        "an inactive user's": {anna, ben},
        "another organisation's user's": {anna, ben},
        "an unknown user's": {anna, ben},
        "anna's and cleo's": {anna},
    }
    async with sessions() as session:
        one_by_one = {
            what: {r.user_id for r in await recipients(session, creditor, assigned=assigned)}
            for what, assigned in asked.items()
        }
        with reads() as statements:
            batched = await audiences(session, [(creditor, a) for a in asked.values()])
        assert len(statements) == 1, "one statement for every piece of work at once"
    assert one_by_one == wanted
    # ``includes`` is asked of active users (the pages hold only those), by their organisation.
    assert {
        what: {u for u in (anna, ben) if audience.includes(u, creditor)}
        for what, audience in zip(asked, batched, strict=True)
    } == wanted
    assert not any(audience.includes(xena, partner) for audience in batched)


async def test_a_partners_daily_summary_lists_the_tasks_the_rule_gives_them(
    dev_env: WorkflowEnvironment,
    digest_worker: Worker,
    sessions: async_sessionmaker[AsyncSession],
    sink: Sink,
) -> None:
    partner, [_, otto, pia, quinn] = await org(
        sessions, OrgKind.PARTNER, "nina", "otto", "pia", "quinn"
    )
    _, [xena] = await org(sessions, OrgKind.PARTNER, "xena")
    await deactivate(sessions, pia)
    created = MORNING - dt.timedelta(hours=3)
    titles = {
        "otto's": otto,
        "nobody's": None,
        "pia's (inactive)": pia,
        "xena's (another organisation)": xena,
    }
    for title, assignee in titles.items():
        await add_task(sessions, partner, f"Task {title}", created=created, assignee=assignee)
    async with transaction(sessions) as session:  # quinn turned the daily summary off
        await set_preferences(
            session=session,
            user_id=quinn,
            choices={MailCategory.DAILY_SUMMARY: False},
            now=MORNING,
        )

    await run(dev_env, digest_worker, DailySummaryWorkflow, MORNING)
    [to_nina] = received(sink, "nina@partner.example")
    [to_otto] = received(sink, "otto@partner.example")
    assert "Task otto's" not in to_nina, "a task assigned to an active user is theirs alone"
    assert "Task otto's" in to_otto
    for title in ("nobody's", "pia's (inactive)", "xena's (another organisation)"):
        assert f"Task {title}" in to_nina and f"Task {title}" in to_otto
    assert "3 new tasks" in to_nina and "4 new tasks" in to_otto
    assert received(sink, "pia@partner.example") == [], "inactive"
    assert received(sink, "quinn@partner.example") == [], "turned the daily summary off"
    assert received(sink, "xena@partner.example") == [], "another organisation's tasks"
    assert sink.received() == 2


@pytest.fixture
async def unsubscribable_worker(
    dev_env: WorkflowEnvironment,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    sink: Sink,
    mail_settings: Settings,
) -> AsyncIterator[Worker]:
    """A worker whose e-mails carry signed one-click unsubscribe links."""
    async with build_worker(
        dev_env.client,
        task_queue=task_queue,
        sessions=sessions,
        mail=sender(sessions, sink, mail_settings),
    ) as running:
        yield running


async def test_overdue_reminders_follow_the_rule_and_stop_for_who_unsubscribed(
    dev_env: WorkflowEnvironment,
    unsubscribable_worker: Worker,
    sessions: async_sessionmaker[AsyncSession],
    sink: Sink,
    browser: httpx.AsyncClient,
) -> None:
    creditor, [anna, _, cleo] = await org(sessions, OrgKind.CREDITOR, "anna", "ben", "cleo")
    _, [xena] = await org(sessions, OrgKind.PARTNER, "xena")
    await deactivate(sessions, cleo)
    start = dt.datetime(2026, 12, 1, 6, tzinfo=dt.UTC)
    for title, assignee in {"anna's": anna, "cleo's": cleo, "xena's": xena}.items():
        await add_task(
            sessions,
            creditor,
            f"Overdue {title}",
            created=start - dt.timedelta(days=10),
            overdue_since=start - dt.timedelta(days=1),
            access=AccessLevel.CREDITOR,
            assignee=assignee,
        )

    await run(dev_env, unsubscribable_worker, OverdueReminderWorkflow, start)
    [to_anna] = received(sink, "anna@creditor.example")
    [to_ben] = received(sink, "ben@creditor.example")
    assert all(t in to_anna for t in ("Overdue anna's", "Overdue cleo's", "Overdue xena's"))
    assert "Overdue anna's" not in to_ben, "anna's task reminds anna alone"
    assert "Overdue cleo's" in to_ben, "an inactive assignee's task reminds the organisation"
    assert "Overdue xena's" in to_ben, "so does one assigned outside the organisation"
    assert received(sink, "cleo@creditor.example") == []
    assert received(sink, "xena@partner.example") == [], "never another organisation's task"

    # Ben unsubscribes with his reminder's one-click link; a week later only anna is reminded.
    url, _ = unsubscribe_header(sink, "ben@creditor.example")
    parts = urlsplit(url)
    clicked = await browser.post(
        f"{parts.path}?{parts.query}",
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert clicked.status_code == 200, clicked.text
    await run(dev_env, unsubscribable_worker, OverdueReminderWorkflow, start + dt.timedelta(7))
    assert len(received(sink, "anna@creditor.example")) == 2
    assert len(received(sink, "ben@creditor.example")) == 1
    assert sink.received() == 3
