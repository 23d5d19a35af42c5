"""Unsubscribing stops exactly that category (issue 13, item 4): an e-mail sent through a real
in-process SMTP server (aiosmtpd) carries a signed one-click ``List-Unsubscribe`` link; a POST
to that very URL, with no session and no CSRF token, turns the category off; ``send_email`` then
skips that recipient for that category only."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.mail import MailActivities
from api.app import create_app
from domain.enums import OrgKind
from domain.mail import Email, MailCategory, Recipient
from mail.render import unsubscribe_url
from mail.sink import list_messages, read_message
from mail.unsubscribe import read_unsubscribe_token
from settings import Settings
from store.models import NotificationPreference
from tests.mail.conftest import Sink, partner_wrote, smtp_config
from tests.support import Actor, make_actor

PORTAL = "https://caseloop.test/portal"


@pytest.fixture
def mail_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"portal_base_url": PORTAL})


@pytest.fixture
async def browser(mail_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The real app, as a mail provider or a browser without any cookie reaches it."""
    app = create_app(mail_settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://caseloop.test"
        ) as client,
    ):
        yield client


def sender(sessions: object, sink: Sink, settings: Settings) -> MailActivities:
    config = replace(
        smtp_config(sink.port),
        portal_base_url=settings.portal_base_url,
        unsubscribe_secret=settings.unsubscribe_secret,
    )
    return MailActivities(sessions, config)  # type: ignore[arg-type]


def to_users(email: Email, *actors: Actor, key: str, category: MailCategory) -> Email:
    recipients = [
        Recipient(email=a.principal.user_email, name=f"User {n}", user_id=a.principal.user_id)
        for n, a in enumerate(actors)
    ]
    return Email.model_validate(
        {
            **email.model_dump(by_alias=False),
            "idempotency_key": key,
            "category": category,
            "to": recipients,
        }
    )


def unsubscribe_header(sink: Sink, address: str) -> tuple[str, str | None]:
    [stored] = [m for m in list_messages(sink.directory) if address in m.to]
    message = read_message(sink.directory, stored.id)
    assert message is not None
    url = "".join(str(message["List-Unsubscribe"]).split()).removeprefix("<").removesuffix(">")
    return url, message["List-Unsubscribe-Post"]


async def test_unsubscribing_through_the_emails_one_click_link_stops_exactly_that_category(
    sessions: async_sessionmaker[AsyncSession],
    sink: Sink,
    mail_settings: Settings,
    browser: httpx.AsyncClient,
) -> None:
    alice = await make_actor(sessions, OrgKind.CREDITOR)
    bob = await make_actor(sessions, OrgKind.CREDITOR, org_id=alice.org_id)
    activities = sender(sessions, sink, mail_settings)
    template = partner_wrote("placeholder@example.com")
    partner_messages = MailCategory.PARTNER_MESSAGES

    first = to_users(template, alice, bob, key="burst-1", category=partner_messages)
    assert (await ActivityEnvironment().run(activities.send_email, first)).sent == 2
    url, one_click = unsubscribe_header(sink, alice.principal.user_email)
    assert one_click == "List-Unsubscribe=One-Click"
    assert url.startswith(f"{PORTAL}/unsubscribe?token=")

    # What a mail provider does (RFC 8058): POST the header's URL, no cookie, no CSRF token.
    parts = urlsplit(url)
    clicked = await browser.post(
        f"{parts.path}?{parts.query}",
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert clicked.status_code == 200, clicked.text
    assert "You are unsubscribed" in clicked.text

    # Same category, both again: alice is skipped, bob (on the same e-mail) still gets his.
    again = to_users(template, alice, bob, key="burst-2", category=partner_messages)
    result = await ActivityEnvironment().run(activities.send_email, again)
    assert (result.sent, result.skipped) == (1, 1)
    # Another category: alice still gets it.
    other = to_users(template, alice, key="overdue-1", category=MailCategory.OVERDUE_REMINDER)
    result = await ActivityEnvironment().run(activities.send_email, other)
    assert (result.sent, result.skipped) == (1, 0)

    received = sorted(
        (m.to.rsplit("<", 1)[1].rstrip(">"), m.subject) for m in list_messages(sink.directory)
    )
    alice_got = [s for to, s in received if to == alice.principal.user_email]
    bob_got = [s for to, s in received if to == bob.principal.user_email]
    assert len(alice_got) == 2, "the first e-mail and the other category's, not the second"
    assert len(bob_got) == 2, "both partner-message e-mails"
    async with sessions() as session:
        rows = (await session.execute(select(NotificationPreference))).scalars().all()
    assert [(r.user_id, r.category, r.enabled) for r in rows] == [
        (alice.principal.user_id, "partner_messages", False)
    ]


async def test_the_sender_reads_every_recipients_choice_in_one_statement(
    sessions: async_sessionmaker[AsyncSession], sink: Sink, mail_settings: Settings
) -> None:
    actors = [await make_actor(sessions, OrgKind.PARTNER) for _ in range(5)]
    activities = sender(sessions, sink, mail_settings)
    email = to_users(
        partner_wrote("x@example.com"),
        *actors,
        key="summary-1",
        category=MailCategory.DAILY_SUMMARY,
    )
    reads: list[str] = []
    engine = sessions.kw["bind"]

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "notification_preferences" in statement:
            reads.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        result = await ActivityEnvironment().run(activities.send_email, email)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
    assert result.sent == 5
    assert len(reads) == 1, reads


def test_the_unsubscribe_secret_is_its_own_key_else_the_portals_and_never_short() -> None:
    portal_key, own_key = "p" * 32, "u" * 32
    base = {"_env_file": None}
    assert Settings(**base).unsubscribe_secret is None  # type: ignore[arg-type]
    assert Settings(portal_secret_key=portal_key, **base).unsubscribe_secret == portal_key  # type: ignore[arg-type]
    both = Settings(portal_secret_key=portal_key, unsubscribe_secret_key=own_key, **base)  # type: ignore[arg-type]
    assert both.unsubscribe_secret == own_key
    with pytest.raises(ValueError, match="UNSUBSCRIBE_SECRET_KEY must have at least 32"):
        Settings(unsubscribe_secret_key="too short", **base)  # type: ignore[arg-type]


def test_a_recipient_without_a_user_id_or_a_sender_without_a_key_gets_the_preferences_page() -> (
    None
):
    user = Recipient(email="a@example.com", user_id=uuid.uuid4())
    guest = Recipient(email="b@example.com")
    category = MailCategory.OVERDUE_REMINDER
    page = f"{PORTAL}/preferences?category=overdue_reminder"
    assert unsubscribe_url(PORTAL, guest, category, secret="k" * 32) == page
    assert unsubscribe_url(PORTAL, user, category, secret=None) == page
    signed = unsubscribe_url(PORTAL + "/", user, category, secret="k" * 32)
    token = signed.removeprefix(f"{PORTAL}/unsubscribe?token=")
    assert token != signed
    asked = read_unsubscribe_token("k" * 32, token)
    assert asked is not None and (asked.user_id, asked.category) == (user.user_id, category)
    assert read_unsubscribe_token("x" * 32, token) is None, "another key does not read it"
