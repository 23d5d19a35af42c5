"""A newcomer's journey through the portal only: a case from creation to In Collection, clicked
by the creditor (contract, bank account), ops (assign) and the partner (review and accept)."""

from __future__ import annotations

import httpx
from playwright.async_api import Page, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.api.test_tasks import IBAN_DK, new_case
from tests.browser.test_sign_in import sign_in
from tests.portal.support import with_password
from tests.support import Actor


async def menu(page: Page, name: str) -> None:
    await page.get_by_role("navigation", name="Main").get_by_role("link", name=name).click()


async def sign_out(page: Page) -> None:
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


async def test_a_case_goes_from_creation_to_in_collection_by_clicks_alone(
    page: Page,
    live_site: tuple[str, str],
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    site, api_url = live_site
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as api:
        case = await new_case(api, creditor)  # as `caseloop demo` leaves it
    number = case["caseNumber"]

    # The creditor: its Tasks menu shows Sign Contract; signing and the bank account follow.
    await sign_in(page, site, await with_password(sessions, creditor))
    await page.get_by_role("link", name="Sign the collection contract", exact=False).first.click()
    await page.get_by_role("button", name="Sign the contract").click()
    await expect(page.get_by_role("status")).to_contain_text("The contract is signed")
    await menu(page, "Tasks")
    await page.get_by_role("link", name="bank account", exact=False).first.click()
    await page.get_by_label("IBAN").fill(IBAN_DK)
    await page.get_by_label("Account holder").fill("Acme ApS")
    await page.get_by_label("Currency").fill("DKK")
    await page.get_by_role("button", name="Register").click()
    await page.get_by_role("button", name="Set").click()
    await expect(page.get_by_role("status")).to_contain_text("set on the case")
    await menu(page, "Cases")
    await page.get_by_role("link", name=number).click()
    await expect(page.get_by_text("Validated since")).to_be_visible()
    await sign_out(page)

    # Ops assign it to the partner from the case page.
    await sign_in(page, site, await with_password(sessions, ops))
    await menu(page, "Cases")
    await page.get_by_role("link", name=number).click()
    await page.get_by_text("Assign to a partner").click()
    await page.get_by_label("Partner", exact=True).select_option(str(partner.org_id))
    await page.get_by_role("button", name="Assign").click()
    await expect(page.get_by_role("status")).to_contain_text("assigned to the partner")
    await sign_out(page)

    # The partner reviews it from its Tasks menu and accepts.
    await sign_in(page, site, await with_password(sessions, partner))
    await page.get_by_role("link", name="Review", exact=False).first.click()
    await page.get_by_role("button", name="Accept the case").click()
    await expect(page.get_by_role("heading", name="Status: Active")).to_be_visible()
    await expect(page.get_by_text("In Collection since")).to_be_visible()
