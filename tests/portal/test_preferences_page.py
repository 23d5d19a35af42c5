"""The e-mail preferences page (signed in, CSRF like every form) and an e-mail's unsubscribe link
(no sign-in: a GET shows, a POST turns off; a bad token is a 400 page and changes nothing)."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.enums import OrgKind
from domain.mail import MailCategory, Recipient
from mail.render import unsubscribe_url
from mail.unsubscribe import unsubscribe_token
from settings import Settings
from store.models import NotificationPreference
from store.preferences import preferences_of
from tests.portal.support import csrf_of, post_form, signed_in
from tests.support import Actor, make_actor, reads

PAGE = "/portal/preferences"
PARTNERS = {"daily_summary", "overdue_reminder", "deadline_escalation"}
CREDITORS = {
    "partner_messages",
    "contract_reminder",
    "bank_account_digest",
    "overdue_reminder",
    "deadline_escalation",
}


async def turned_off(sessions: async_sessionmaker[AsyncSession], actor: Actor) -> list[str]:
    async with sessions() as session:
        chosen = await preferences_of(session=session, user_id=actor.principal.user_id)
    return [category.value for category, on in chosen.items() if not on]


def checked(page: httpx.Response) -> set[str]:
    return set(re.findall(r'name="enabled" value="([a-z_]+)" checked', page.text))


async def test_the_preferences_page_is_in_the_menu_and_saves_what_is_ticked(
    portal: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], partner: Actor
) -> None:
    await signed_in(portal, sessions, partner)
    tasks = await portal.get("/portal/tasks")
    assert f'href="{PAGE}"' in tasks.text, "reachable from the menu"
    page = await portal.get(PAGE)
    assert page.status_code == 200
    assert checked(page) == PARTNERS, "every category of the partner's is on at first"
    assert "Daily summary of new tasks" in page.text

    keep = sorted(PARTNERS - {"daily_summary"})
    saved = await portal.post(PAGE, data={"csrf_token": csrf_of(page), "enabled": keep})
    assert saved.status_code == 303
    shown = await portal.get(saved.headers["location"])
    assert "Your e-mail preferences are saved." in shown.text
    assert checked(shown) == set(keep)
    assert await turned_off(sessions, partner) == ["daily_summary"]

    again = await portal.post(
        PAGE, data={"csrf_token": csrf_of(shown), "enabled": [*keep, "daily_summary"]}
    )
    assert again.status_code == 303
    assert await turned_off(sessions, partner) == []


async def test_a_preferences_form_without_its_csrf_token_is_refused_and_changes_nothing(
    portal: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    await signed_in(portal, sessions, creditor)
    await portal.get(PAGE)
    refused = await portal.post(PAGE, data={"enabled": []})
    assert refused.status_code == 403
    assert await turned_off(sessions, creditor) == []


async def test_the_page_shows_and_changes_only_the_signed_in_users_preferences(
    portal: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    colleague = await make_actor(sessions, OrgKind.CREDITOR, org_id=creditor.org_id)
    async with sessions() as session, session.begin():
        session.add(
            NotificationPreference(
                user_id=colleague.principal.user_id,
                category="partner_messages",
                enabled=False,
                updated_at=dt.datetime.now(dt.UTC),
            )
        )
    await signed_in(portal, sessions, creditor)
    page = await portal.get(PAGE)
    assert "partner_messages" in checked(page), "the colleague's choice is not shown"
    await post_form(portal, PAGE, {"enabled": "overdue_reminder"})
    assert await turned_off(sessions, colleague) == ["partner_messages"]
    assert "partner_messages" in await turned_off(sessions, creditor)
    assert "overdue_reminder" not in await turned_off(sessions, creditor)


def offered(page: httpx.Response) -> set[str]:
    return set(re.findall(r'name="enabled" value="([a-z_]+)"', page.text))


async def test_each_side_sees_and_saves_only_the_categories_its_users_get(
    portal: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    await signed_in(portal, sessions, creditor)
    page = await portal.get(PAGE)
    assert offered(page) == CREDITORS
    assert "Daily summary of new tasks" not in page.text
    # A form that ticks a partner's category (crafted: the page has no such box) is refused.
    refused = await portal.post(
        PAGE, data={"csrf_token": csrf_of(page), "enabled": ["daily_summary"]}
    )
    assert refused.status_code == 422
    assert "get no e-mails of this category" in refused.text
    assert await turned_off(sessions, creditor) == [], "nothing changed"


async def test_an_ops_user_is_told_there_is_nothing_to_choose(
    portal: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], ops: Actor
) -> None:
    await signed_in(portal, sessions, ops)
    page = await portal.get(PAGE)
    assert page.status_code == 200
    assert offered(page) == set()
    assert "sends no e-mails to your organisation's users" in page.text
    shown = await portal.post(PAGE, data={"csrf_token": csrf_of(page)})
    assert shown.status_code == 200
    refused = await portal.post(
        PAGE, data={"csrf_token": csrf_of(page), "enabled": ["overdue_reminder"]}
    )
    assert refused.status_code == 422
    assert await turned_off(sessions, ops) == []


async def test_the_preferences_page_needs_a_sign_in(portal: httpx.AsyncClient) -> None:
    answer = await portal.get(PAGE)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/portal/sign-in?next=")


def link(settings: Settings, actor: Actor, category: MailCategory) -> str:
    url = unsubscribe_url(
        "https://caseloop.test/portal",
        Recipient(email=actor.principal.user_email, user_id=actor.principal.user_id),
        category,
        secret=settings.unsubscribe_secret,
    )
    parts = urlsplit(url)
    assert parts.path == "/portal/unsubscribe"
    return f"{parts.path}?{parts.query}"


async def test_the_unsubscribe_link_shows_first_and_turns_off_only_on_post_without_a_session(
    portal: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    creditor: Actor,
) -> None:
    path = link(settings, creditor, MailCategory.CONTRACT_REMINDER)
    shown = await portal.get(path)
    assert shown.status_code == 200
    assert "Contract-signing reminders" in shown.text
    assert creditor.principal.user_email in shown.text
    assert "<button" in shown.text and "Unsubscribe" in shown.text
    assert await turned_off(sessions, creditor) == [], "opening the link changes nothing"

    done = await portal.post(path)  # no session, no CSRF token
    assert done.status_code == 200
    assert "You are unsubscribed" in done.text
    assert await turned_off(sessions, creditor) == ["contract_reminder"]
    assert "Already unsubscribed" in (await portal.get(path)).text
    assert (await portal.post(path)).status_code == 200, "a second click is harmless"
    assert await turned_off(sessions, creditor) == ["contract_reminder"]


async def test_a_tampered_or_foreign_unsubscribe_token_is_a_400_page_and_changes_nothing(
    portal: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    creditor: Actor,
) -> None:
    good = link(settings, creditor, MailCategory.PARTNER_MESSAGES)
    token = good.split("token=", 1)[1]
    payload, signature = token.rsplit(".", 1)
    other = unsubscribe_token(
        settings.unsubscribe_secret or "", creditor.principal.user_id, MailCategory.DAILY_SUMMARY
    )
    bad_paths = [
        f"/portal/unsubscribe?token={payload}.{signature[:-2]}xx",  # signature changed
        f"/portal/unsubscribe?token={other.rsplit('.', 1)[0]}.{signature}",  # payload changed
        "/portal/unsubscribe?token="
        + unsubscribe_token(
            "another-secret-0123456789abcdef0123",
            creditor.principal.user_id,
            MailCategory.PARTNER_MESSAGES,
        ),
        "/portal/unsubscribe?token=",
        "/portal/unsubscribe",
    ]
    for path in bad_paths:
        for answer in (await portal.get(path), await portal.post(path)):
            assert answer.status_code == 400, (path, answer.status_code)
            assert "This unsubscribe link is not valid" in answer.text
            assert "text/html" in answer.headers["content-type"]
    async with sessions() as session:
        assert (await session.execute(select(NotificationPreference))).first() is None
    assert (await portal.post(good)).status_code == 200, "the untouched link still works"


async def test_the_preferences_and_unsubscribe_pages_read_a_fixed_number_of_statements(
    portal: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    creditor: Actor,
) -> None:
    path = link(settings, creditor, MailCategory.DAILY_SUMMARY)
    with reads() as seen:
        assert (await portal.get(path)).status_code == 200
    assert len(seen) == 2, seen  # the token's user, its preferences
    await signed_in(portal, sessions, creditor)
    with reads() as seen:
        assert (await portal.get(PAGE)).status_code == 200
    assert len(seen) == 2, seen  # the session's user, their preferences
