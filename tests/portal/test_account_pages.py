"""The account pages a creditor solves SignContract and AssignBankAccount on: sign the
contract, register a bank account; partners and ops are refused."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.api.test_case_work import open_task
from tests.api.test_tasks import IBAN_DK, bank_account, eventually, new_case, sign, tasks_of
from tests.portal.support import post_form, sign_in, with_password
from tests.support import Actor


async def test_signing_the_contract_in_the_portal_solves_sign_contract_and_moves_the_case(
    live_portal: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    case = await new_case(live_portal, creditor)

    sign_task = await open_task(live_portal, creditor, "SignContract")
    assert sign_task["solutionUrl"].endswith("/account/contract")
    await sign_in(live_portal, await with_password(sessions, creditor))
    page = "/portal/account/contract"
    assert (await live_portal.get(page)).status_code == 200

    signed = await post_form(live_portal, page + "/sign", {}, page=page)

    assert signed.status_code == 303
    shown = await live_portal.get(signed.headers["location"])
    assert "The contract is signed" in shown.text and "Signed " in shown.text
    open_types = {t["type"] for t in await tasks_of(live_portal, creditor, status="Open")}
    assert "SignContract" not in open_types

    async def moved() -> bool:
        got = await live_portal.get(f"/api/cases/{case['caseId']}", headers=creditor.headers)
        return bool(got.json()["subStatus"] == "Pending bank account")

    await eventually(moved)


async def test_registering_a_bank_account_checks_the_iban_like_the_api(
    live_portal: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    await sign_in(live_portal, await with_password(sessions, creditor))
    page = "/portal/account/bank-accounts"

    bad = await post_form(
        live_portal,
        page,
        {"iban": "DK5000400440116244", "holderName": "Acme ApS", "currencyCode": "DKK"},
    )
    assert bad.status_code == 422 and "iban" in bad.text.lower()
    assert 'value="DK5000400440116244"' in bad.text
    listed = await live_portal.get("/api/bank-accounts", headers=creditor.headers)
    assert listed.json() == []

    good = await post_form(
        live_portal, page, {"iban": IBAN_DK, "holderName": "Acme ApS", "currencyCode": "DKK"}
    )
    assert good.status_code == 303
    assert IBAN_DK in (await live_portal.get(good.headers["location"])).text
    accounts = (await live_portal.get("/api/bank-accounts", headers=creditor.headers)).json()
    assert [(a["iban"], a["currencyCode"]) for a in accounts] == [(IBAN_DK, "DKK")]


async def test_a_partner_is_refused_the_account_pages(
    live_portal: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], partner: Actor
) -> None:
    await sign_in(live_portal, await with_password(sessions, partner))
    page = await live_portal.get("/portal/account/contract")
    assert page.status_code == 403
    refused = await post_form(
        live_portal, "/portal/account/contract/sign", {}, page="/portal/tasks"
    )
    assert refused.status_code == 403


async def test_a_bank_account_is_set_on_a_waiting_case_from_the_account_page(
    live_portal: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    await sign(live_portal, creditor)
    case = await new_case(live_portal, creditor)
    account_id = await bank_account(live_portal, creditor)
    await sign_in(live_portal, await with_password(sessions, creditor))
    page = "/portal/account/bank-accounts"
    shown = await live_portal.get(page)
    assert case["caseNumber"] in shown.text

    done = await post_form(
        live_portal,
        f"/portal/cases/{case['caseId']}/do/bank-account",
        {"bankAccountId": account_id},
        page=page,
    )

    assert done.status_code == 303, done.text

    async def validated() -> bool:
        got = await live_portal.get(f"/api/cases/{case['caseId']}", headers=creditor.headers)
        return bool(got.json()["status"] == "Validated")

    await eventually(validated)
    assert case["caseNumber"] not in (await live_portal.get(page)).text
