"""The case forms run the API's own commands: ops assign, the partner reviews and accepts on the
ReviewNewCase solution page, changes status, the creditor withdraws; another role is refused
with the API's 403 and a refused form keeps what was typed."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.api.test_case_work import open_task
from tests.api.test_tasks import ready_case, tasks_of
from tests.portal.support import in_collection, post_form, sign_in, with_password
from tests.support import Actor


async def case_of(api: httpx.AsyncClient, actor: Actor, case_id: str) -> dict[str, Any]:
    got = await api.get(f"/api/cases/{case_id}", headers=actor.headers)
    assert got.status_code == 200, got.text
    return dict(got.json())


async def test_ops_assign_and_the_partner_accepts_on_the_review_page(
    live_portal: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    case = await ready_case(live_portal, creditor)
    case_page = f"/portal/cases/{case['caseId']}"
    await sign_in(live_portal, await with_password(sessions, ops))
    form = await live_portal.get(case_page)
    assert partner.principal.org_name in form.text  # the partner list of the assign form

    assigned = await post_form(
        live_portal, case_page + "/do/assign", {"partnerId": str(partner.org_id)}, page=case_page
    )
    assert assigned.status_code == 303, assigned.text
    assert (await case_of(live_portal, creditor, case["caseId"]))["status"] == "Assigned"

    await sign_in(live_portal, await with_password(sessions, partner))

    task = await open_task(live_portal, partner, "ReviewNewCase")
    # The test settings' PORTAL_BASE_URL is https://portal.example.test (no /portal path).
    review_page = "/portal" + urlsplit(task["solutionUrl"]).path
    review = await live_portal.get(review_page)
    assert review.status_code == 200
    assert '<details class="case-form" id="form-accept" open>' in review.text

    accepted = await post_form(live_portal, case_page + "/do/accept", {}, page=review_page)

    assert accepted.status_code == 303
    assert accepted.headers["location"] == case_page + "?done=accepted"
    assert (await case_of(live_portal, creditor, case["caseId"]))["status"] == "In Collection"
    assert await tasks_of(live_portal, partner, status="Open", type="ReviewNewCase") == []
    assert "It is now in collection" in (await live_portal.get(accepted.headers["location"])).text


async def test_the_partner_changes_status_and_the_apis_refusal_keeps_the_form(
    live_portal: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    case_id = await in_collection(live_portal, creditor, partner, ops)
    page = f"/portal/cases/{case_id}"
    await sign_in(live_portal, await with_password(sessions, partner))

    refused = await post_form(
        live_portal, page + "/do/status", {"status": "Closed", "note": "done here"}, page=page
    )
    assert refused.status_code == 422 and "closeCode" in refused.text
    assert '<details class="case-form" id="form-status" open>' in refused.text
    assert "done here" in refused.text
    assert (await case_of(live_portal, creditor, case_id))["status"] == "In Collection"

    changed = await post_form(
        live_portal,
        page + "/do/status",
        {"status": "In Collection", "subStatus": "First reminder sent", "note": "Letter sent"},
        page=page,
    )
    assert changed.status_code == 303, changed.text
    after = await case_of(live_portal, creditor, case_id)
    assert after["subStatus"] == "First reminder sent"


async def test_a_partner_logs_a_call_with_a_number_field(
    live_portal: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    case_id = await in_collection(live_portal, creditor, partner, ops)
    page = f"/portal/cases/{case_id}"
    await sign_in(live_portal, await with_password(sessions, partner))
    logged = await post_form(
        live_portal,
        page + "/do/call",
        {"durationSeconds": "95", "outcome": "Reached", "note": "Promised to pay"},
        page=page,
    )
    assert logged.status_code == 303, logged.text
    assert "Promised to pay" in (await live_portal.get(page)).text  # on the timeline


async def test_the_creditor_withdraws_and_cannot_use_a_partners_form(
    live_portal: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    case_id = await in_collection(live_portal, creditor, partner, ops)
    page = f"/portal/cases/{case_id}"
    await sign_in(live_portal, await with_password(sessions, creditor))
    shown = await live_portal.get(page)
    assert 'id="form-withdraw"' in shown.text and 'id="form-status"' not in shown.text

    refused = await post_form(live_portal, page + "/do/accept", {}, page=page)
    assert refused.status_code == 403

    withdrawn = await post_form(live_portal, page + "/do/withdraw", {"note": "Paid us"}, page=page)
    assert withdrawn.status_code == 303
    after = await case_of(live_portal, creditor, case_id)
    assert (after["status"], after["closeCode"]) == ("Closed", "Withdrawn by client")


async def test_an_unknown_form_or_page_is_a_404(
    live_portal: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    case = await ready_case(live_portal, creditor)
    page = f"/portal/cases/{case['caseId']}"
    await sign_in(live_portal, await with_password(sessions, creditor))
    assert (await post_form(live_portal, page + "/do/explode", {}, page=page)).status_code == 404
    assert (await live_portal.get(page + "/nowhere")).status_code == 404
