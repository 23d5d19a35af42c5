"""Signing in and out of the portal in a real browser, with the mouse and with the keyboard."""

from __future__ import annotations

import datetime as dt

from playwright.async_api import Page, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.enums import OrgKind
from tests.portal.support import PASSWORD, with_password
from tests.support import SEED_TIME, Actor, add_case, make_actor


async def sign_in(page: Page, site: str, email: str, password: str = PASSWORD) -> None:
    await page.goto(site + "/sign-in")
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()


async def test_sign_in_lands_on_the_page_asked_for_and_sign_out_ends_the_session(
    page: Page, site: str, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    email = await with_password(sessions, creditor)
    await page.goto(site + "/cases")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()

    await expect(page.get_by_role("heading", name="Cases", exact=True)).to_be_visible()
    assert page.url == site + "/cases"
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await page.goto(site + "/tasks")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


async def test_a_wrong_password_says_so_and_keeps_the_email(
    page: Page, site: str, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    email = await with_password(sessions, creditor)
    await sign_in(page, site, email, "not my password at all")
    await expect(page.get_by_role("alert")).to_contain_text("do not match an account")
    await expect(page.get_by_label("E-mail")).to_have_value(email)


async def test_sign_in_with_the_keyboard_only(
    page: Page, site: str, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    email = await with_password(sessions, creditor)
    await page.goto(site + "/sign-in")
    # The e-mail field has the focus; Tab moves to the password; Enter submits.
    await expect(page.get_by_label("E-mail")).to_be_focused()
    await page.keyboard.type(email)
    await page.keyboard.press("Tab")
    await expect(page.get_by_label("Password")).to_be_focused()
    await page.keyboard.type(PASSWORD)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Tasks", exact=True)).to_be_visible()
    # The first Tab stop of every page is the skip link.
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("link", name="Skip to content")).to_be_focused()


async def test_a_form_posted_from_another_site_is_refused(
    page: Page, site: str, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    email = await with_password(sessions, creditor)
    await sign_in(page, site, email)
    await expect(page.get_by_role("heading", name="Tasks", exact=True)).to_be_visible()
    # A page elsewhere that posts the sign-out form without the portal's token.
    await page.set_content(
        f'<form method="post" action="{site}/sign-out"><button>Go</button></form>'
    )
    await page.get_by_role("button", name="Go").click()
    await expect(page.get_by_role("alert")).to_contain_text("was not sent from the portal")
    await page.goto(site + "/tasks")
    await expect(page.get_by_role("heading", name="Tasks", exact=True)).to_be_visible()


async def test_a_partner_never_reaches_a_creditors_page_or_another_partners_case(
    page: Page,
    site: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
) -> None:
    rival = await make_actor(sessions, OrgKind.PARTNER)
    unassigned = await add_case(sessions, creditor, created_at=SEED_TIME - dt.timedelta(days=1))
    rivals = await add_case(sessions, creditor, partner=rival)
    await sign_in(page, site, await with_password(sessions, partner))
    await expect(page.get_by_role("heading", name="Tasks", exact=True)).to_be_visible()
    for case_id in (unassigned, rivals):
        answer = await page.goto(f"{site}/cases/{case_id}")
        assert answer is not None and answer.status == 404
        await expect(page.get_by_role("heading", name="Not found")).to_be_visible()
        chat = await page.goto(f"{site}/cases/{case_id}/chat")
        assert chat is not None and chat.status == 404
    account = await page.goto(f"{site}/account")
    assert account is not None and account.status == 403
    await expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
