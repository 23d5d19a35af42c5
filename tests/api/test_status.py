"""Status changes follow the transition table; everything else is refused and changes nothing."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store.models import OutboxEventRow
from tests.api.test_tasks import assign, eventually, new_case, ready_case, tasks_of
from tests.support import Actor


async def in_collection(
    api: httpx.AsyncClient, creditor: Actor, partner: Actor, ops: Actor
) -> dict[str, Any]:
    case = await ready_case(api, creditor)
    assert (await assign(api, ops, case["caseId"], partner)).status_code == 200
    accepted = await api.post(f"/api/cases/{case['caseId']}/accept", headers=partner.headers)
    assert accepted.status_code == 200, accepted.text
    return dict(accepted.json())


async def move(api: httpx.AsyncClient, actor: Actor, case_id: str, **body: Any) -> httpx.Response:
    return await api.post(f"/api/cases/{case_id}/status", json=body, headers=actor.headers)


async def pay(
    api: httpx.AsyncClient,
    partner: Actor,
    case_id: str,
    amount: str,
    *,
    headers: dict[str, str] | None = None,
    **body: Any,
) -> httpx.Response:
    """The partner records a debtor payment (to the creditor and made today, unless ``body``
    says otherwise)."""
    today = dt.datetime.now(ZoneInfo(partner.principal.timezone)).date()
    return await api.post(
        f"/api/cases/{case_id}/payments",
        json={"amount": amount, "paidOn": today.isoformat(), "paidTo": "Creditor", **body},
        headers={**partner.headers, **(headers or {})},
    )


async def test_partner_moves_case_through_collection_to_resolved_with_history(
    api: httpx.AsyncClient, creditor: Actor, partner: Actor, ops: Actor
) -> None:
    case = await in_collection(api, creditor, partner, ops)
    cid = case["caseId"]
    steps = [
        {"status": "In Collection", "subStatus": "First reminder sent", "note": "Letter 1"},
        {"status": "Payment Plan", "subStatus": "Plan active", "note": "12 instalments"},
        {"status": "Resolved", "subStatus": "Settlement reached", "note": "Settled at 90%"},
    ]
    for step in steps:
        if step["status"] == "Resolved":
            # A settlement closes as "Partially paid", which needs a recorded payment.
            assert (await pay(api, partner, cid, "11250.00")).status_code == 201
        response = await move(api, partner, cid, **step)
        assert response.status_code == 200, response.text
        assert (response.json()["status"], response.json()["subStatus"]) == (
            step["status"],
            step["subStatus"],
        )
    assert (response.json()["lifecycle"], response.json()["closeCode"]) == (
        "Closed",
        "Partially paid",
    )
    history = (await api.get(f"/api/cases/{cid}/history", headers=creditor.headers)).json()
    assert [(h["status"], h["subStatus"], h["note"]) for h in history["history"][-3:]] == [
        (s["status"], s["subStatus"], s["note"]) for s in steps
    ]


async def test_invalid_transition_is_409_naming_allowed_ones_and_changes_nothing(
    api: httpx.AsyncClient, creditor: Actor, partner: Actor, ops: Actor
) -> None:
    case = await in_collection(api, creditor, partner, ops)
    cid = case["caseId"]
    assert (await pay(api, partner, cid, case["amountToRecover"])).status_code == 201
    resolved = await move(api, partner, cid, status="Resolved", subStatus="Paid in full")
    assert resolved.status_code == 200, resolved.text
    before = (await api.get(f"/api/cases/{cid}/history", headers=creditor.headers)).json()

    back = await move(api, partner, cid, status="In Collection")
    assert back.status_code == 409
    assert back.headers["content-type"] == "application/problem+json"
    assert back.json()["code"] == "invalid_transition"
    assert "allowed from here: none" in back.json()["detail"]
    after = (await api.get(f"/api/cases/{cid}/history", headers=creditor.headers)).json()
    assert after == before
    assert (await api.get(f"/api/cases/{cid}", headers=creditor.headers)).json()[
        "status"
    ] == "Resolved"


async def test_refusals_name_the_rule(
    api: httpx.AsyncClient, creditor: Actor, partner: Actor, ops: Actor
) -> None:
    case = await in_collection(api, creditor, partner, ops)
    cid = case["caseId"]
    wrong_sub = await move(api, partner, cid, status="Payment Plan", subStatus="Paid in full")
    assert wrong_sub.status_code == 422
    assert "not a sub-status of Payment Plan" in wrong_sub.json()["detail"]
    no_code = await move(api, partner, cid, status="Closed")
    assert no_code.status_code == 422
    assert "closeCode" in no_code.json()["detail"]
    paid = await move(api, partner, cid, status="Closed", closeCode="Paid")
    assert paid.status_code == 422
    assert "payments covering" in paid.json()["detail"]
    to_created = await move(api, partner, cid, status="Created")
    assert to_created.status_code == 409
    assert "In Collection, Payment Plan, On Hold, Resolved, Closed" in to_created.json()["detail"]
    creditor_try = await move(api, creditor, cid, status="Closed", closeCode="Other")
    assert creditor_try.status_code == 403
    closed = await move(api, partner, cid, status="Closed", closeCode="Debtor untraceable")
    assert closed.status_code == 200, closed.text
    assert closed.json()["closeCode"] == "Debtor untraceable"


async def test_creditor_withdraws_a_waiting_case_and_its_account_task_clears(
    api: httpx.AsyncClient, creditor: Actor
) -> None:
    case = await new_case(api, creditor)  # no bank account: AssignBankAccount opens
    await eventually(lambda: tasks_of(api, creditor, type="AssignBankAccount", status="Open"))
    withdrawn = await api.post(
        f"/api/cases/{case['caseId']}/withdraw", json={}, headers=creditor.headers
    )
    assert withdrawn.status_code == 200, withdrawn.text
    assert (withdrawn.json()["status"], withdrawn.json()["closeCode"]) == (
        "Closed",
        "Withdrawn by client",
    )
    await eventually(lambda: tasks_of(api, creditor, type="AssignBankAccount", status="Solved"))
    await eventually(lambda: tasks_of(api, creditor, type="SignContract", status="Solved"))
    assert await tasks_of(api, creditor, status="Open") == [], (
        "nothing left to do for a closed case"
    )
    again = await api.post(
        f"/api/cases/{case['caseId']}/withdraw", json={}, headers=creditor.headers
    )
    assert again.status_code == 409


async def test_every_status_change_is_an_outbox_event_with_old_new_and_sequence(
    api: httpx.AsyncClient,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    case = await in_collection(api, creditor, partner, ops)
    await move(api, partner, case["caseId"], status="Payment Plan", subStatus="Plan active")
    history = (
        await api.get(f"/api/cases/{case['caseId']}/history", headers=creditor.headers)
    ).json()
    async with sessions() as session:
        events = list(
            await session.scalars(
                select(OutboxEventRow).where(
                    OutboxEventRow.case_id == uuid.UUID(case["caseId"]),
                    OutboxEventRow.type.in_(["case.created", "case.status.changed"]),
                )
            )
        )
    payloads = sorted((e.payload for e in events), key=lambda p: p["sequence"])
    assert [p["sequence"] for p in payloads] == [h["seq"] for h in history["history"]]
    assert payloads[0]["newStatus"] == "Created" and payloads[0]["oldStatus"] is None
    last = payloads[-1]
    assert (last["oldStatus"], last["newStatus"], last["newSubStatus"], last["newLifecycle"]) == (
        "In Collection",
        "Payment Plan",
        "Plan active",
        "Active",
    )


async def test_asking_for_more_info_raises_more_info_needed_until_done_or_resumed(
    api: httpx.AsyncClient, creditor: Actor, partner: Actor, ops: Actor
) -> None:
    case = await in_collection(api, creditor, partner, ops)
    cid = case["caseId"]
    more_info = {"status": "On Hold", "subStatus": "More info required", "note": "Need the PO"}
    held = await move(api, partner, cid, **more_info)
    assert held.status_code == 200, held.text
    assert held.json()["lifecycle"] == "More Info Required"
    [task] = await tasks_of(api, creditor, type="MoreInfoNeeded")
    assert (task["type"], task["status"], task["description"]) == (
        "MoreInfoNeeded",
        "Open",
        "Need the PO",
    )
    assert task["action"] == {
        "method": "POST",
        "path": f"/api/cases/{cid}/chats",
        "body": {"threadType": "Invoice Chat"},
        "needsMessage": True,
    }
    partner_view = (
        await api.get(
            f"/api/cases/{cid}/tasks",
            params={"status": ["Open", "Solved"]},
            headers=partner.headers,
        )
    ).json()
    assert [t["type"] for t in partner_view] == ["ReviewNewCase"], "creditor tasks stay hidden"

    done = await api.post(f"/api/tasks/{task['id']}/done", json={}, headers=creditor.headers)
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["resolvedBy"]["kind"]) == ("Solved", "user")
    # Marked done = the information was given: the case is back where it was held from.
    back = (await api.get(f"/api/cases/{cid}", headers=partner.headers)).json()
    assert (back["status"], back["subStatus"], back["waitingFor"]) == ("In Collection", None, None)
    history = (await api.get(f"/api/cases/{cid}/history", headers=creditor.headers)).json()
    assert history["history"][-1]["note"] == "Information provided (marked done)"

    assert (await move(api, partner, cid, **more_info)).status_code == 200
    open_tasks = await tasks_of(api, creditor, type="MoreInfoNeeded", status="Open")
    assert len(open_tasks) == 1 and open_tasks[0]["id"] != task["id"], "asked again: a new task"
    assert (await move(api, partner, cid, status="In Collection")).status_code == 200
    [again] = [
        t
        for t in await tasks_of(api, creditor, type="MoreInfoNeeded")
        if t["id"] == open_tasks[0]["id"]
    ]
    assert (again["status"], again["resolvedBy"]["kind"]) == ("Solved", "system")
