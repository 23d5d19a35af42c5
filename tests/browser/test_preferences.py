"""E-mail preferences in a real browser: the page from the menu, unticking a category with the
mouse and with the keyboard, and an e-mail's unsubscribe link followed without signing in.
Both pages are photographed (to SCREENSHOT_DIR when set)."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Page, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.mail import MailCategory, Recipient
from mail.render import unsubscribe_url
from settings import Settings
from store.preferences import preferences_of
from tests.browser.test_sign_in import sign_in
from tests.browser.test_work import shoot, shots  # noqa: F401 (a fixture)
from tests.portal.support import with_password
from tests.support import Actor


async def turned_off(sessions: async_sessionmaker[AsyncSession], actor: Actor) -> list[str]:
    async with sessions() as session:
        chosen = await preferences_of(session=session, user_id=actor.principal.user_id)
    return [category.value for category, on in chosen.items() if not on]


async def test_a_user_turns_the_daily_summary_off_and_on_from_the_menu(
    page: Page,
    site: str,
    sessions: async_sessionmaker[AsyncSession],
    partner: Actor,
    shots: Path,  # noqa: F811
) -> None:
    await sign_in(page, site, await with_password(sessions, partner))
    await expect(page.get_by_role("heading", name="Tasks", exact=True)).to_be_visible()
    await (
        page.get_by_role("navigation", name="Main")
        .get_by_role("link", name="E-mail preferences")
        .click()
    )
    await expect(page.get_by_role("heading", name="E-mail preferences")).to_be_visible()
    summary = page.get_by_label("Daily summary of new tasks")
    await expect(summary).to_be_checked()

    await summary.uncheck()
    await page.get_by_role("button", name="Save preferences").click()
    await expect(page.get_by_role("status")).to_contain_text("preferences are saved")
    await expect(page.get_by_label("Daily summary of new tasks")).not_to_be_checked()
    await expect(page.get_by_label("Overdue task reminders")).to_be_checked()
    await shoot(page, shots, "preferences")
    assert await turned_off(sessions, partner) == ["daily_summary"]

    # By keyboard: focus the box, Space ticks it, Enter on the button saves.
    await page.get_by_label("Daily summary of new tasks").focus()
    await page.keyboard.press("Space")
    await page.get_by_role("button", name="Save preferences").focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("status")).to_contain_text("preferences are saved")
    await expect(page.get_by_label("Daily summary of new tasks")).to_be_checked()
    assert await turned_off(sessions, partner) == []


async def test_an_emails_unsubscribe_link_works_without_signing_in(
    page: Page,
    site: str,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    shots: Path,  # noqa: F811
) -> None:
    email = await with_password(sessions, creditor)
    link = unsubscribe_url(
        site,
        Recipient(email=email, user_id=creditor.principal.user_id),
        MailCategory.PARTNER_MESSAGES,
        secret=settings.unsubscribe_secret,
    )
    await page.goto(link)
    await expect(page.get_by_role("heading", name="Unsubscribe")).to_be_visible()
    await expect(page.get_by_text("Messages from collection partners")).to_be_visible()
    await shoot(page, shots, "unsubscribe")
    assert await turned_off(sessions, creditor) == [], "opening the link changes nothing"

    await page.get_by_role("button", name="Unsubscribe").click()
    await expect(page.get_by_role("heading", name="You are unsubscribed")).to_be_visible()
    assert await turned_off(sessions, creditor) == ["partner_messages"]

    await page.get_by_role("link", name="sign in and open your e-mail preferences").click()
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password").fill("correct horse battery staple")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="E-mail preferences")).to_be_visible()
    await expect(page.get_by_label("Messages from collection partners")).not_to_be_checked()
    await expect(page.get_by_label("Contract-signing reminders")).to_be_checked()
