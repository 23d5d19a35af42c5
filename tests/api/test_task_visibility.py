"""Task visibility follows case visibility: a partner that lost a case (rejected it, declined or
lost its quote, or saw it go to another partner) reads and touches none of its tasks on it, while
the partner that worked a finished case keeps its own."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.enums import OrgKind
from tests.api.test_case_work import open_task
from tests.api.test_status import in_collection, move, pay
from tests.api.test_tasks import assign, eventually, ready_case, tasks_of
from tests.support import Actor, make_actor


async def generic_task(api: httpx.AsyncClient, partner: Actor, case_id: str) -> dict[str, Any]:
    """A Generic task the partner gives itself on a case assigned to it (it stays open)."""
    created = await api.post(
        "/api/tasks",
        json={"caseId": case_id, "title": "Call the debtor", "description": "Before Friday"},
        headers=partner.headers,
    )
    assert created.status_code == 201, created.text
    return dict(created.json())


async def assert_lost(
    api: httpx.AsyncClient, partner: Actor, ops: Actor, case_id: str, task_ids: list[str]
) -> None:
    """The case and every one of the partner's tasks on it are 404 for the partner, on every
    task endpoint; ops still see the tasks (they exist)."""
    assert (await api.get(f"/api/cases/{case_id}", headers=partner.headers)).status_code == 404
    assert await tasks_of(api, partner, caseId=case_id) == []
    listed = {t["id"] for t in await tasks_of(api, partner)}
    assert listed.isdisjoint(task_ids)
    tasks_of_case = await api.get(f"/api/cases/{case_id}/tasks", headers=partner.headers)
    assert tasks_of_case.status_code == 404
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat()
    for task_id in task_ids:
        one = await api.get(f"/api/tasks/{task_id}", headers=partner.headers)
        assert (one.status_code, one.json()["code"]) == (404, "not_found"), one.text
        assert "description" not in one.json()
        for action, body in (
            ("postpone", {"deadline": future, "reason": "later"}),
            ("assign", {"userId": str(partner.principal.user_id)}),
            ("close", {"reason": "done"}),
            ("done", {}),
        ):
            acted = await api.post(
                f"/api/tasks/{task_id}/{action}", json=body, headers=partner.headers
            )
            assert (acted.status_code, acted.json()["code"]) == (404, "not_found"), (
                action,
                acted.text,
            )
        seen_by_ops = await api.get(f"/api/tasks/{task_id}", headers=ops.headers)
        assert seen_by_ops.status_code == 200, seen_by_ops.text


async def test_partner_that_rejected_a_case_no_longer_sees_or_touches_its_tasks(
    api: httpx.AsyncClient, creditor: Actor, partner: Actor, ops: Actor
) -> None:
    cid = (await ready_case(api, creditor))["caseId"]
    assert (await assign(api, ops, cid, partner)).status_code == 200
    review = await open_task(api, partner, "ReviewNewCase")
    generic = await generic_task(api, partner, cid)
    assert {t["id"] for t in await tasks_of(api, partner, caseId=cid)} == {
        review["id"],
        generic["id"],
    }

    rejected = await api.post(
        f"/api/cases/{cid}/reject", json={"reason": "Outside our region"}, headers=partner.headers
    )
    assert rejected.status_code == 204, rejected.text
    await assert_lost(api, partner, ops, cid, [review["id"], generic["id"]])


async def test_partner_that_declined_its_quote_no_longer_sees_the_quote_task(
    api: httpx.AsyncClient, creditor: Actor, partner: Actor, ops: Actor
) -> None:
    cid = (await ready_case(api, creditor))["caseId"]
    requested = await api.post(
        f"/api/cases/{cid}/quote-requests",
        json={"partnerIds": [str(partner.org_id)]},
        headers=ops.headers,
    )
    assert requested.status_code == 200, requested.text
    quote_task = await open_task(api, partner, "ProvideQuote")
    declined = await api.post(
        f"/api/cases/{cid}/quotes/decline", json={"reason": "No capacity"}, headers=partner.headers
    )
    assert declined.status_code == 200, declined.text
    await assert_lost(api, partner, ops, cid, [quote_task["id"]])


async def test_partner_whose_quote_lost_no_longer_sees_the_quote_task_the_winner_does(
    api: httpx.AsyncClient,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    rival = await make_actor(sessions, OrgKind.PARTNER)
    cid = (await ready_case(api, creditor))["caseId"]
    requested = await api.post(
        f"/api/cases/{cid}/quote-requests",
        json={"partnerIds": [str(partner.org_id), str(rival.org_id)]},
        headers=ops.headers,
    )
    assert requested.status_code == 200, requested.text
    tasks = {}
    quotes = {}
    for quoting, fee in ((partner, "15"), (rival, "12")):
        tasks[quoting.org_id] = await open_task(api, quoting, "ProvideQuote")
        quoted = await api.post(
            f"/api/cases/{cid}/quotes", json={"feePercent": fee}, headers=quoting.headers
        )
        assert quoted.status_code == 201, quoted.text
        quotes[quoting.org_id] = quoted.json()["id"]
    # While its quote waits for the creditor's pick, each partner still sees its task.
    loser_task = tasks[rival.org_id]["id"]
    assert (await api.get(f"/api/tasks/{loser_task}", headers=rival.headers)).status_code == 200

    selected = await api.post(
        f"/api/cases/{cid}/quotes/selection",
        json={"quoteId": quotes[partner.org_id]},
        headers=creditor.headers,
    )
    assert selected.status_code == 200, selected.text
    await assert_lost(api, rival, ops, cid, [loser_task])
    winner = {t["type"] for t in await tasks_of(api, partner, caseId=cid)}
    assert winner == {"ProvideQuote", "ReviewNewCase"}


async def test_partner_whose_case_went_to_another_partner_no_longer_sees_its_tasks(
    api: httpx.AsyncClient,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    other = await make_actor(sessions, OrgKind.PARTNER)
    cid = (await ready_case(api, creditor))["caseId"]
    assert (await assign(api, ops, cid, partner)).status_code == 200
    review = await open_task(api, partner, "ReviewNewCase")
    generic = await generic_task(api, partner, cid)
    # Ops take the case back from the reviewing partner and give it to another.
    back = await move(api, ops, cid, status="Validated", note="giving it to another partner")
    assert back.status_code == 200, back.text
    reassigned = await assign(api, ops, cid, other)
    assert reassigned.status_code == 200, reassigned.text

    await assert_lost(api, partner, ops, cid, [review["id"], generic["id"]])
    [new_review] = await eventually(lambda: tasks_of(api, other, caseId=cid, status="Open"))
    assert new_review["type"] == "ReviewNewCase"
    assert (
        await api.get(f"/api/tasks/{new_review['id']}", headers=other.headers)
    ).status_code == 200


async def test_partner_keeps_its_tasks_on_a_finished_case_it_worked(
    api: httpx.AsyncClient, creditor: Actor, partner: Actor, ops: Actor
) -> None:
    cid = (await in_collection(api, creditor, partner, ops))["caseId"]
    generic = await generic_task(api, partner, cid)
    assert (await pay(api, partner, cid, "500.00")).status_code == 201
    resolved = await move(
        api, partner, cid, status="Resolved", subStatus="Partial payment accepted"
    )
    assert resolved.status_code == 200, resolved.text
    record = await open_task(api, partner, "RecordPayment")
    assert (await open_task(api, creditor, "ReviewPartner"))["caseId"] == cid

    listed = {t["type"]: t for t in await tasks_of(api, partner, caseId=cid)}
    assert {"ReviewNewCase", "Generic", "RecordPayment"} <= set(listed)
    assert "ReviewPartner" not in listed  # the creditor's
    one = await api.get(f"/api/tasks/{record['id']}", headers=partner.headers)
    assert (one.status_code, one.json()["caseId"]) == (200, cid)
    closed = await api.post(
        f"/api/tasks/{generic['id']}/close", json={"reason": "called"}, headers=partner.headers
    )
    assert (closed.status_code, closed.json()["status"]) == (200, "Solved"), closed.text
