"""Working a case through the API: payments, pause/resume, after-care, complaints, quotes, survey."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from domain.enums import OrgKind
from tests.api.test_status import in_collection, move, pay
from tests.api.test_tasks import assign, eventually, ready_case, tasks_of
from tests.support import Actor, make_actor

COPENHAGEN = ZoneInfo("Europe/Copenhagen")


def today() -> dt.date:
    return dt.datetime.now(COPENHAGEN).date()


async def case_of(api: httpx.AsyncClient, actor: Actor, case_id: str) -> dict[str, Any]:
    response = await api.get(f"/api/cases/{case_id}", headers=actor.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def open_task(api: httpx.AsyncClient, actor: Actor, type: str) -> dict[str, Any]:
    """The one open task of ``type`` the actor sees (waits for it: tasks arrive asynchronously)."""
    [task] = await eventually(lambda: tasks_of(api, actor, type=type, status="Open"))
    return task


async def task_status(api: httpx.AsyncClient, actor: Actor, task_id: str) -> str:
    response = await api.get(f"/api/tasks/{task_id}", headers=actor.headers)
    assert response.status_code == 200, response.text
    return str(response.json()["status"])


async def test_paid_in_full_needs_payments_covering_the_amount(
    api: httpx.AsyncClient, creditor: Actor, partner: Actor, ops: Actor
) -> None:
    cid = (await in_collection(api, creditor, partner, ops))["caseId"]  # DKK 12500.00

    too_early = await move(api, partner, cid, status="Resolved", subStatus="Paid in full")
    assert too_early.status_code == 422
    assert too_early.json()["code"] == "validation_failed"
    assert "Paid needs recorded payments covering" in too_early.json()["detail"]
    assert (await case_of(api, creditor, cid))["status"] == "In Collection"

    # Invalid payments change nothing.
    tomorrow = (today() + dt.timedelta(days=1)).isoformat()
    future = await pay(api, partner, cid, "100.00", paidOn=tomorrow)
    assert future.status_code == 422
    assert future.json()["errors"] == [{"field": "paidOn", "message": "must not be in the future"}]
    for amount in ("0", "-5.00", "1.234"):
        assert (await pay(api, partner, cid, amount)).status_code == 422, amount
    assert (await pay(api, creditor, cid, "100.00")).status_code == 403

    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await pay(api, partner, cid, "10000", headers=key, note="Bank transfer")
    assert first.status_code == 201, first.text
    payment = first.json()
    assert (payment["amount"], payment["paidTo"], payment["note"]) == (
        "10000.00",
        "Creditor",
        "Bank transfer",
    )
    assert payment["recordedBy"] == str(partner.principal.user_id)
    replay = await pay(api, partner, cid, "10000", headers=key, note="Bank transfer")
    assert (replay.status_code, replay.json()["id"]) == (201, payment["id"])
    assert replay.headers["Idempotent-Replayed"] == "true"

    short = await move(api, partner, cid, status="Resolved", subStatus="Paid in full")
    assert short.status_code == 422, "10000.00 of 12500.00 is not paid in full"
    assert (await pay(api, partner, cid, "2500.00", paidTo="Partner")).status_code == 201

    listed = await api.get(f"/api/cases/{cid}/payments/summary", headers=creditor.headers)
    assert listed.status_code == 200, listed.text
    assert [p["amount"] for p in listed.json()["payments"]] == ["10000.00", "2500.00"]
    assert listed.json()["totals"] == {
        "currencyCode": "DKK",
        "amountToRecover": "12500.00",
        "paid": "12500.00",
        "outstanding": "0.00",
    }

    resolved = await move(api, partner, cid, status="Resolved", subStatus="Paid in full")
    assert resolved.status_code == 200, resolved.text
    assert (resolved.json()["status"], resolved.json()["closeCode"]) == ("Resolved", "Paid")
    late = await pay(api, partner, cid, "1.00")
    assert late.status_code == 409
    assert late.json()["code"] in ("invalid_transition", "case_finished")


async def test_pausing_waits_for_the_named_party_until_resumed(
    api: httpx.AsyncClient, creditor: Actor, partner: Actor, ops: Actor
) -> None:
    cid = (await in_collection(api, creditor, partner, ops))["caseId"]
    plan = await move(api, partner, cid, status="Payment Plan", subStatus="Plan active")
    assert plan.status_code == 200, plan.text

    nobody = await move(api, partner, cid, status="On Hold", subStatus="Paused", note="Wait")
    assert nobody.status_code == 422
    assert "waitingFor" in nobody.json()["detail"]
    assert (await case_of(api, creditor, cid))["subStatus"] == "Plan active"

    paused = await move(
        api,
        partner,
        cid,
        status="On Hold",
        subStatus="Paused",
        waitingFor="Creditor",
        note="Please confirm the debtor's new address",
    )
    assert paused.status_code == 200, paused.text
    assert (paused.json()["status"], paused.json()["lifecycle"]) == ("On Hold", "Paused")
    assert paused.json()["waitingFor"] == "Creditor"
    task = await open_task(api, creditor, "ClientInputRequired")
    assert task["description"] == "Please confirm the debtor's new address"
    assert await tasks_of(api, partner, type="ClientInputRequired") == [], "creditor's task only"

    assert (
        await api.post(f"/api/cases/{cid}/resume", json={}, headers=creditor.headers)
    ).status_code == 403
    resumed = await api.post(
        f"/api/cases/{cid}/resume", json={"note": "Address received"}, headers=partner.headers
    )
    assert resumed.status_code == 200, resumed.text
    assert (resumed.json()["status"], resumed.json()["subStatus"]) == (
        "Payment Plan",
        "Plan active",
    )
    assert resumed.json()["waitingFor"] is None
    assert await task_status(api, creditor, task["id"]) == "Solved"
    history = (await api.get(f"/api/cases/{cid}/history", headers=creditor.headers)).json()
    assert history["history"][-1]["note"] == "Address received"
    again = await api.post(f"/api/cases/{cid}/resume", json={}, headers=partner.headers)
    assert again.status_code == 409
    assert again.json()["code"] == "invalid_transition"

    # Waiting for the partner itself: a follow-up for the partner, which ops may end too.
    mine = await move(api, partner, cid, status="On Hold", subStatus="Paused", waitingFor="Partner")
    assert mine.status_code == 200, mine.text
    follow_up = await open_task(api, partner, "FollowUpPausedCase")
    assert follow_up["action"] == {
        "method": "POST",
        "path": f"/api/cases/{cid}/resume",
        "body": None,
        "needsMessage": False,
    }
    by_ops = await api.post(f"/api/cases/{cid}/resume", json={}, headers=ops.headers)
    assert by_ops.status_code == 200, by_ops.text
    assert by_ops.json()["status"] == "Payment Plan"
    assert await task_status(api, partner, follow_up["id"]) == "Solved"


async def test_resolved_case_asks_for_review_and_commission_then_ends(
    api: httpx.AsyncClient,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    dev_env: WorkflowEnvironment,
) -> None:
    cid = (await in_collection(api, creditor, partner, ops))["caseId"]
    commission = {"amount": "75.00", "paidOn": today().isoformat(), "invoiceReference": "C-17"}
    premature = await api.post(
        f"/api/cases/{cid}/commission-payments", json=commission, headers=partner.headers
    )
    assert premature.status_code == 409
    assert premature.json()["code"] == "nothing_to_answer"
    assert (await pay(api, partner, cid, "500.00", paidTo="Creditor")).status_code == 201
    resolved = await move(
        api, partner, cid, status="Resolved", subStatus="Partial payment accepted"
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["closeCode"] == "Partially paid"

    review_task = await open_task(api, creditor, "ReviewPartner")
    record_task = await open_task(api, partner, "RecordPayment")
    # The amount and the day paid are the partner's to say: no action to follow.
    assert record_task["action"] is None
    assert await tasks_of(api, creditor, type="RecordPayment") == []
    assert await tasks_of(api, partner, type="ReviewPartner") == []

    review_url = f"/api/cases/{cid}/partner-review"
    too_high = await api.post(review_url, json={"rating": 11}, headers=creditor.headers)
    assert too_high.status_code == 422
    assert too_high.json()["errors"][0]["field"] == "rating"
    assert (
        await api.post(review_url, json={"rating": 9}, headers=partner.headers)
    ).status_code == 403
    reviewed = await api.post(
        review_url, json={"rating": 9, "comment": "Fast and polite"}, headers=creditor.headers
    )
    assert reviewed.status_code == 201, reviewed.text
    assert (reviewed.json()["rating"], reviewed.json()["partnerId"]) == (9, str(partner.org_id))
    assert await task_status(api, creditor, review_task["id"]) == "Solved"

    paid = await api.post(
        f"/api/cases/{cid}/commission-payments", json=commission, headers=partner.headers
    )
    assert paid.status_code == 201, paid.text
    assert (paid.json()["amount"], paid.json()["invoiceReference"]) == ("75.00", "C-17")
    assert await task_status(api, partner, record_task["id"]) == "Solved"
    listed = (await api.get(f"/api/cases/{cid}/payments/summary", headers=partner.headers)).json()
    assert [c["id"] for c in listed["commissionPayments"]] == [paid.json()["id"]]

    again = await api.post(review_url, json={"rating": 3}, headers=creditor.headers)
    assert again.status_code == 409
    # Nothing is left to do: the case's workflow ends, and every later change is case_finished.
    handle = dev_env.client.get_workflow_handle(f"case-{cid}")

    async def completed() -> bool:
        return (await handle.describe()).status is WorkflowExecutionStatus.COMPLETED

    await eventually(completed)
    finished = await api.post(review_url, json={"rating": 3}, headers=creditor.headers)
    assert finished.status_code == 409
    assert finished.json()["code"] == "case_finished"
    assert (await case_of(api, creditor, cid))["status"] == "Resolved"


async def test_complaint_is_answered_by_the_partner_only(
    api: httpx.AsyncClient, creditor: Actor, partner: Actor, ops: Actor
) -> None:
    cid = (await in_collection(api, creditor, partner, ops))["caseId"]
    url = f"/api/cases/{cid}/complaints"
    by_partner = await api.post(url, json={"message": "x"}, headers=partner.headers)
    assert by_partner.status_code == 403
    filed = await api.post(
        url, json={"message": "Nobody called the debtor in a month"}, headers=creditor.headers
    )
    assert filed.status_code == 201, filed.text
    complaint = filed.json()
    assert (complaint["message"], complaint["response"]) == (
        "Nobody called the debtor in a month",
        None,
    )

    task = await open_task(api, partner, "RespondToComplaint")
    assert task["action"] == {
        "method": "POST",
        "path": f"/api/cases/{cid}/complaints/responses",
        "body": {"complaintId": complaint["id"]},
        "needsMessage": True,
    }
    assert await tasks_of(api, creditor, type="RespondToComplaint") == []

    answer = {"complaintId": complaint["id"], "message": "We called twice; notes attached."}
    by_creditor = await api.post(f"{url}/responses", json=answer, headers=creditor.headers)
    assert by_creditor.status_code == 403
    unknown = await api.post(
        f"{url}/responses", json={**answer, "complaintId": "nope"}, headers=partner.headers
    )
    assert unknown.status_code == 404
    responded = await api.post(f"{url}/responses", json=answer, headers=partner.headers)
    assert responded.status_code == 200, responded.text
    assert responded.json()["response"] == answer["message"]
    assert await task_status(api, partner, task["id"]) == "Solved"
    [listed] = (await api.get(url, headers=creditor.headers)).json()
    assert (listed["id"], listed["response"]) == (complaint["id"], answer["message"])
    twice = await api.post(f"{url}/responses", json=answer, headers=partner.headers)
    assert twice.status_code == 409


async def test_quote_round_from_request_to_selection(
    api: httpx.AsyncClient,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    rival = await make_actor(sessions, OrgKind.PARTNER)
    outsider = await make_actor(sessions, OrgKind.PARTNER)
    cid = (await ready_case(api, creditor))["caseId"]
    url = f"/api/cases/{cid}/quote-requests"

    unknown_id = uuid.uuid4()
    bad = await api.post(
        url,
        json={"partnerIds": [str(partner.org_id), str(creditor.org_id), str(unknown_id)]},
        headers=ops.headers,
    )
    assert bad.status_code == 422
    assert [e["field"] for e in bad.json()["errors"]] == ["partnerIds[1]", "partnerIds[2]"]
    assert str(unknown_id) in bad.json()["detail"]
    assert (await case_of(api, creditor, cid))["subStatus"] is None
    ids = {"partnerIds": [str(partner.org_id), str(rival.org_id)]}
    assert (await api.post(url, json=ids, headers=creditor.headers)).status_code == 403

    requested = await api.post(url, json=ids, headers=ops.headers)
    assert requested.status_code == 200, requested.text
    assert requested.json()["lifecycle"] == "Collecting Quotes"
    tasks = {}
    for invited in (partner, rival):
        assert (await case_of(api, invited, cid))["status"] == "Validated"
        tasks[invited.org_id] = await open_task(api, invited, "ProvideQuote")
        assert tasks[invited.org_id]["action"] is None, "the fee is the partner's choice"

    # Not invited: the case and its quotes do not exist for this partner.
    for method, path, body in (
        ("GET", f"/api/cases/{cid}", None),
        ("GET", f"/api/cases/{cid}/quotes", None),
        ("POST", f"/api/cases/{cid}/quotes", {"feePercent": "10"}),
        ("POST", f"/api/cases/{cid}/quotes/decline", {"reason": "busy"}),
    ):
        response = await api.request(method, path, json=body, headers=outsider.headers)
        assert response.status_code == 404, (method, path)

    quotes_url = f"/api/cases/{cid}/quotes"
    for fee in ("0", "100.01"):
        out_of_range = await api.post(quotes_url, json={"feePercent": fee}, headers=rival.headers)
        assert out_of_range.status_code == 422, fee
    quoted = await api.post(
        quotes_url, json={"feePercent": "15", "terms": "No cure, no pay"}, headers=partner.headers
    )
    assert quoted.status_code == 201, quoted.text
    quote = quoted.json()
    assert (quote["status"], quote["feePercent"], quote["partner"]["id"]) == (
        "Submitted",
        "15.00",
        str(partner.org_id),
    )
    assert await task_status(api, partner, tasks[partner.org_id]["id"]) == "Solved"
    select_task = await open_task(api, creditor, "SelectQuoteWinner")
    assert (await case_of(api, creditor, cid))["lifecycle"] == "Pending Quote Selection"

    all_quotes = (await api.get(quotes_url, headers=creditor.headers)).json()
    assert {q["partner"]["id"]: q["status"] for q in all_quotes} == {
        str(partner.org_id): "Submitted",
        str(rival.org_id): "Requested",
    }
    assert [q["id"] for q in (await api.get(quotes_url, headers=partner.headers)).json()] == [
        quote["id"]
    ]
    assert [
        q["partner"]["id"] for q in (await api.get(quotes_url, headers=rival.headers)).json()
    ] == [str(rival.org_id)]

    selection = {"quoteId": quote["id"]}
    assert (
        await api.post(f"{quotes_url}/selection", json=selection, headers=partner.headers)
    ).status_code == 403
    selected = await api.post(f"{quotes_url}/selection", json=selection, headers=creditor.headers)
    assert selected.status_code == 200, selected.text
    case = selected.json()
    assert (case["status"], case["subStatus"], case["assignedPartner"]) == (
        "Assigned",
        "Partner reviewing",
        partner.principal.org_name,
    )
    assert await task_status(api, creditor, select_task["id"]) == "Solved"
    await open_task(api, partner, "ReviewNewCase")
    assert await task_status(api, ops, tasks[rival.org_id]["id"]) == "Solved"
    assert (await api.get(f"/api/cases/{cid}", headers=rival.headers)).status_code == 404
    assert (await api.get(quotes_url, headers=rival.headers)).status_code == 404


async def test_invited_partner_may_decline_and_then_no_longer_sees_the_case(
    api: httpx.AsyncClient,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    cid = (await ready_case(api, creditor))["caseId"]
    requested = await api.post(
        f"/api/cases/{cid}/quote-requests",
        json={"partnerIds": [str(partner.org_id)]},
        headers=ops.headers,
    )
    assert requested.status_code == 200, requested.text
    task = await open_task(api, partner, "ProvideQuote")
    no_reason = await api.post(
        f"/api/cases/{cid}/quotes/decline", json={"reason": ""}, headers=partner.headers
    )
    assert no_reason.status_code == 422
    declined = await api.post(
        f"/api/cases/{cid}/quotes/decline",
        json={"reason": "No capacity this month"},
        headers=partner.headers,
    )
    assert declined.status_code == 200, declined.text
    assert (declined.json()["status"], declined.json()["declineReason"]) == (
        "Declined",
        "No capacity this month",
    )
    assert await task_status(api, ops, task["id"]) == "Solved"
    assert (await api.get(f"/api/cases/{cid}", headers=partner.headers)).status_code == 404
    [quote] = (await api.get(f"/api/cases/{cid}/quotes", headers=creditor.headers)).json()
    assert quote["status"] == "Declined"


async def test_survey_without_an_open_survey_is_nothing_to_answer(
    api: httpx.AsyncClient, creditor: Actor, partner: Actor, ops: Actor
) -> None:
    cid = (await in_collection(api, creditor, partner, ops))["caseId"]
    answer = {"outcome": "continue", "note": "Debtor promised to pay next week"}
    by_creditor = await api.post(f"/api/cases/{cid}/survey", json=answer, headers=creditor.headers)
    assert by_creditor.status_code == 403
    bad_outcome = await api.post(
        f"/api/cases/{cid}/survey", json={**answer, "outcome": "maybe"}, headers=partner.headers
    )
    assert bad_outcome.status_code == 422
    response = await api.post(f"/api/cases/{cid}/survey", json=answer, headers=partner.headers)
    assert response.status_code == 409
    assert response.json()["code"] == "nothing_to_answer"
    history = (await api.get(f"/api/cases/{cid}/history", headers=creditor.headers)).json()
    assert answer["note"] not in str(history), "nothing was recorded"


async def test_reviewing_partner_may_offer_custom_terms_instead_of_accepting(
    api: httpx.AsyncClient, creditor: Actor, partner: Actor, ops: Actor
) -> None:
    cid = (await ready_case(api, creditor))["caseId"]
    assert (await assign(api, ops, cid, partner)).status_code == 200
    review = await open_task(api, partner, "ReviewNewCase")
    offered = await api.post(
        f"/api/cases/{cid}/quotes",
        json={"feePercent": "22.5", "terms": "Legal costs billed separately"},
        headers=partner.headers,
    )
    assert offered.status_code == 201, offered.text
    assert (offered.json()["status"], offered.json()["feePercent"]) == ("Submitted", "22.50")
    assert await task_status(api, partner, review["id"]) == "Solved"
    case = await case_of(api, partner, cid)  # the partner still sees its lead
    assert (case["status"], case["lifecycle"], case["assignedPartner"]) == (
        "Validated",
        "Pending Quote Selection",
        None,
    )
    await open_task(api, creditor, "SelectQuoteWinner")
