"""Every task type's ``action`` is followable (issue 12 A8): a case raises the task for real,
its owner reads it from ``GET /api/tasks``, makes the call the action names with exactly the body
it gives (adding only the ``message`` a person writes where ``needsMessage`` says so), and the
task is solved. Where the call needs a person's choice, ``action`` is null. Walks the whole
catalogue: a new task type without a way to raise it here fails."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.projection import write_tasks
from domain.tasks import CATALOGUE, AccessLevel, TaskType
from store.db import transaction
from tests.api.test_case_work import open_task
from tests.api.test_status import in_collection, move, pay
from tests.api.test_tasks import assign, eventually, new_case, ready_case
from tests.support import Actor, make_task

# The types whose solving call needs a person's choice: their ``action`` must be null.
NEEDS_A_CHOICE = {
    TaskType.UPDATE_CASE_STATUS: "the survey's outcome",
    TaskType.PROVIDE_QUOTE: "the fee, or a reason to decline",
    TaskType.SELECT_QUOTE_WINNER: "which quote wins",
    TaskType.REVIEW_PARTNER: "the rating",
    TaskType.RECORD_PAYMENT: "the amount and the day paid",
    TaskType.CHASE_PAYMENT: "the amount and the day paid",
    TaskType.ASSIGN_BANK_ACCOUNT: "which bank account",
    TaskType.CASE_VALIDATION_NEEDS_INFO: "the corrected data",
    TaskType.GENERIC: "whether the work is done",
}


@dataclass(frozen=True)
class World:
    api: httpx.AsyncClient
    creditor: Actor
    partner: Actor
    ops: Actor
    sessions: async_sessionmaker[AsyncSession]


Raise = Callable[[World], Awaitable[Actor]]


async def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    return dict(response.json())


async def _assigned(w: World) -> Actor:
    case = await ready_case(w.api, w.creditor)
    await _ok(await assign(w.api, w.ops, case["caseId"], w.partner))
    return w.partner


async def _survey_due(w: World) -> Actor:
    # The monthly survey comes a month after acceptance (tests/workflows/test_lifecycle.py
    # raises it with time skipping); here the projected task stands on a real case.
    case = await in_collection(w.api, w.creditor, w.partner, w.ops)
    task = make_task(
        w.partner, access=AccessLevel.PARTNER, case_id=case["caseId"], deadline=None
    ).model_copy(update={"type": TaskType.UPDATE_CASE_STATUS, "key": "survey"})
    async with transaction(w.sessions) as session:
        await write_tasks(session, [task])
    return w.partner


async def _creditor_wrote_in_a_lead_chat(w: World) -> Actor:
    """NewMessage in a Lead Chat (a thread the default of a post is not)."""
    cid = await _quoted(w)
    await _ok(
        await w.api.post(
            f"/api/cases/{cid}/chats",
            json={
                "message": "Could you start next week?",
                "threadType": "Lead Chat",
                "partnerId": str(w.partner.org_id),
            },
            headers=w.creditor.headers,
        )
    )
    return w.partner


async def _partner_wrote(w: World) -> Actor:
    case = await in_collection(w.api, w.creditor, w.partner, w.ops)
    await _ok(
        await w.api.post(
            f"/api/cases/{case['caseId']}/chats",
            json={"message": "The debtor disputes the invoice."},
            headers=w.partner.headers,
        )
    )
    return w.creditor


async def _quotes_requested(w: World) -> str:
    cid = str((await ready_case(w.api, w.creditor))["caseId"])
    await _ok(
        await w.api.post(
            f"/api/cases/{cid}/quote-requests",
            json={"partnerIds": [str(w.partner.org_id)]},
            headers=w.ops.headers,
        )
    )
    return cid


async def _invited(w: World) -> Actor:
    await _quotes_requested(w)
    return w.partner


async def _quoted(w: World) -> str:
    cid = await _quotes_requested(w)
    await _ok(
        await w.api.post(
            f"/api/cases/{cid}/quotes", json={"feePercent": "15"}, headers=w.partner.headers
        )
    )
    return cid


async def _quote_submitted(w: World) -> Actor:
    await _quoted(w)
    return w.creditor


async def _resolved(w: World) -> str:
    cid = str((await in_collection(w.api, w.creditor, w.partner, w.ops))["caseId"])
    await _ok(await pay(w.api, w.partner, cid, "500.00", paidTo="Creditor"))
    await _ok(
        await move(w.api, w.partner, cid, status="Resolved", subStatus="Partial payment accepted")
    )
    return cid


async def _case_resolved_for_creditor(w: World) -> Actor:
    await _resolved(w)
    return w.creditor


async def _case_resolved_for_partner(w: World) -> Actor:
    await _resolved(w)
    return w.partner


async def _commission_overdue(w: World) -> Actor:
    """RecordPayment past its deadline (postponed to a moment later): ChasePayment."""
    await _resolved(w)
    record = await open_task(w.api, w.partner, "RecordPayment")
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    await _ok(
        await w.api.post(
            f"/api/tasks/{record['id']}/postpone",
            json={"deadline": soon.isoformat(), "reason": "invoice sent late"},
            headers=w.partner.headers,
        )
    )
    return w.partner


async def _complaint_filed(w: World) -> Actor:
    case = await in_collection(w.api, w.creditor, w.partner, w.ops)
    await _ok(
        await w.api.post(
            f"/api/cases/{case['caseId']}/complaints",
            json={"message": "Nobody called the debtor in a month"},
            headers=w.creditor.headers,
        )
    )
    return w.partner


async def _on_hold(w: World, **hold: str) -> None:
    case = await in_collection(w.api, w.creditor, w.partner, w.ops)
    await _ok(await move(w.api, w.partner, case["caseId"], status="On Hold", **hold))


async def _paused_for_creditor(w: World) -> Actor:
    await _on_hold(w, subStatus="Paused", waitingFor="Creditor", note="Confirm the address")
    return w.creditor


async def _paused_for_partner(w: World) -> Actor:
    await _on_hold(w, subStatus="Paused", waitingFor="Partner", note="Debtor on holiday")
    return w.partner


async def _more_info_asked(w: World) -> Actor:
    await _on_hold(w, subStatus="More info required", note="Need the PO")
    return w.creditor


async def _contract_unsigned(w: World) -> Actor:
    await new_case(w.api, w.creditor)
    return w.creditor


async def _no_bank_account(w: World) -> Actor:
    await new_case(w.api, w.creditor)
    return w.creditor


async def _data_missing(w: World) -> Actor:
    unreachable = {"type": "Private", "name": "Jens Hansen", "countryAlpha2": "DK"}
    await new_case(w.api, w.creditor, debtor=unreachable)
    return w.creditor


async def _generic(w: World) -> Actor:
    case = await in_collection(w.api, w.creditor, w.partner, w.ops)
    await _ok(
        await w.api.post(
            "/api/tasks",
            json={"caseId": case["caseId"], "title": "Call the debtor"},
            headers=w.creditor.headers,
        )
    )
    return w.creditor


# How a case comes to raise each task type; the task's owner.
RAISE: dict[TaskType, Raise] = {
    TaskType.REVIEW_NEW_CASE: _assigned,
    TaskType.UPDATE_CASE_STATUS: _survey_due,
    TaskType.NEW_MESSAGE: _creditor_wrote_in_a_lead_chat,
    TaskType.REPLY_TO_CHAT: _partner_wrote,
    TaskType.PROVIDE_QUOTE: _invited,
    TaskType.SELECT_QUOTE_WINNER: _quote_submitted,
    TaskType.REVIEW_PARTNER: _case_resolved_for_creditor,
    TaskType.RECORD_PAYMENT: _case_resolved_for_partner,
    TaskType.CHASE_PAYMENT: _commission_overdue,
    TaskType.RESPOND_TO_COMPLAINT: _complaint_filed,
    TaskType.CLIENT_INPUT_REQUIRED: _paused_for_creditor,
    TaskType.FOLLOW_UP_PAUSED_CASE: _paused_for_partner,
    TaskType.SIGN_CONTRACT: _contract_unsigned,
    TaskType.MORE_INFO_NEEDED: _more_info_asked,
    TaskType.ASSIGN_BANK_ACCOUNT: _no_bank_account,
    TaskType.CASE_VALIDATION_NEEDS_INFO: _data_missing,
    TaskType.GENERIC: _generic,
}


async def _status(api: httpx.AsyncClient, actor: Actor, task_id: str) -> str | None:
    response = await api.get(f"/api/tasks/{task_id}", headers=actor.headers)
    assert response.status_code == 200, response.text
    status = response.json()["status"]
    return str(status) if status == "Solved" else None


@pytest.mark.parametrize("task_type", list(CATALOGUE))
async def test_every_task_types_action_is_followed_from_the_task_alone_and_solves_it(
    task_type: TaskType,
    api: httpx.AsyncClient,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    owner = await RAISE[task_type](World(api, creditor, partner, ops, sessions))
    task = await open_task(api, owner, task_type.value)
    action = task["action"]
    if task_type in NEEDS_A_CHOICE:
        assert action is None, f"{task_type.value} needs {NEEDS_A_CHOICE[task_type]}"
        return
    assert action is not None
    assert set(action) == {"method", "path", "body", "needsMessage"}
    body = action["body"]
    if action["needsMessage"]:
        body = {**(body or {}), "message": "Done: see the attached details."}
    answer = await api.request(action["method"], action["path"], json=body, headers=owner.headers)
    assert answer.status_code in (200, 201), answer.text
    assert await eventually(lambda: _status(api, owner, task["id"])) == "Solved"


async def test_a_relationship_chat_tasks_action_answers_in_the_relationship_chat(
    api: httpx.AsyncClient, creditor: Actor, partner: Actor, ops: Actor
) -> None:
    await in_collection(api, creditor, partner, ops)
    [pair] = (await api.get("/api/relationships", headers=partner.headers)).json()["relationships"]
    await _ok(
        await api.post(
            f"/api/relationships/{pair['id']}/chats",
            json={"message": "New price list attached"},
            headers=partner.headers,
        )
    )
    [task] = await eventually(lambda: _relationship_tasks(api, creditor, "ReplyToChat"), seconds=10)
    action = task["action"]
    assert action == {
        "method": "POST",
        "path": f"/api/relationships/{pair['id']}/chats",
        "body": None,
        "needsMessage": True,
    }
    answer = await api.post(action["path"], json={"message": "Thanks"}, headers=creditor.headers)
    assert answer.status_code == 201, answer.text
    assert await eventually(lambda: _status(api, creditor, task["id"])) == "Solved"


async def _relationship_tasks(
    api: httpx.AsyncClient, actor: Actor, type: str
) -> list[dict[str, Any]]:
    response = await api.get("/api/tasks", params={"type": type}, headers=actor.headers)
    return [t for t in response.json()["tasks"] if t["relationshipId"]]
