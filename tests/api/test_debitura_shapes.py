"""Issue 12 part A: the shapes and parameters a Debitura client expects (docs/api.md
"Differences from Debitura's API" lists what still differs)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.projection import write_tasks
from api.app import create_app
from api.routing import api_routes
from domain.tasks import AccessLevel, TaskStatus, TaskType
from settings import Settings
from store.db import transaction
from store.models import Case, CaseInvitation, User
from tests.api.test_status import in_collection, move
from tests.api.test_tasks import sign
from tests.support import SEED_TIME, Actor, add_case, case_body, make_task


async def _get(api: httpx.AsyncClient, actor: Actor, path: str, **params: Any) -> Any:
    response = await api.get(path, params=params, headers=actor.headers)
    assert response.status_code == 200, response.text
    return response.json()


# -- 1. list envelopes ----------------------------------------------------------------------------
async def test_case_and_task_lists_answer_page_and_cases_or_tasks_without_data(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    case_id = await add_case(sessions, creditor)
    async with transaction(sessions) as session:
        await write_tasks(
            session,
            [make_task(creditor, access=AccessLevel.CREDITOR, case_id=case_id, deadline=None)],
        )
    cases = await _get(api, creditor, "/api/cases")
    assert set(cases) == {"page", "cases"}
    assert [c["caseId"] for c in cases["cases"]] == [str(case_id)]
    tasks = await _get(api, creditor, "/api/tasks")
    assert set(tasks) == {"page", "tasks"}
    assert [t["caseId"] for t in tasks["tasks"]] == [str(case_id)]
    assert tasks["page"]["totalResults"] == 1


# -- 2. sub-collections come whole ------------------------------------------------------------------
async def test_case_chats_and_timeline_come_whole_and_the_timeline_in_debituras_item_shape(
    api: httpx.AsyncClient, creditor: Actor, partner: Actor, ops: Actor
) -> None:
    cid = (await in_collection(api, creditor, partner, ops))["caseId"]
    for n in range(12):  # more than a page of 10
        sender = partner if n % 2 else creditor
        posted = await api.post(
            f"/api/cases/{cid}/chats", json={"message": f"m{n}"}, headers=sender.headers
        )
        assert posted.status_code == 201, posted.text
    note = await api.post(
        f"/api/cases/{cid}/calls",
        json={"durationSeconds": 60, "outcome": "Reached", "note": "Spoke to AP"},
        headers=partner.headers,
    )
    assert note.status_code == 201, note.text

    chats = await _get(api, creditor, f"/api/cases/{cid}/chats")
    assert isinstance(chats, list), "a bare list, as Debitura's List[ChatDto]"
    assert [m["message"] for m in chats] == [f"m{n}" for n in range(12)]

    timeline = await _get(api, creditor, f"/api/cases/{cid}/timeline")
    assert set(timeline) == {"items", "currentEngagementPhase"}
    assert timeline["currentEngagementPhase"] == "Pre-legal"
    items = timeline["items"]
    history = (await _get(api, creditor, f"/api/cases/{cid}/history"))["history"]
    assert len(items) == len(history) + 12 + 1, "every item, none cut at a page"
    for item in items:
        assert {"date", "type", "title", "description", "actor"} <= set(item)
        assert item["actor"]["type"] in ("System", "Creditor user", "Partner user")
    messages = [i for i in items if i["type"] == "message"]
    assert (messages[0]["title"], messages[0]["description"]) == ("Message in Invoice Chat", "m0")
    assert messages[0]["actor"]["type"] == "Creditor user"
    assert messages[1]["actor"] == {
        "type": "Partner user",
        "name": partner.principal.user_name or partner.principal.user_email,
    }
    [call] = [i for i in items if i["type"] == "call"]
    assert (call["title"], call["description"]) == ("Call: Reached", "Spoke to AP")
    created = items[0]
    assert (created["type"], created["title"], created["actor"]) == (
        "statusChange",
        "Created",
        {"type": "System", "name": "API"},
    )
    accepted = [i for i in items if i["type"] == "statusChange"][-1]
    assert (accepted["title"], accepted["actor"]["type"]) == ("In Collection", "Partner user")
    # Paging parameters are not read there: refused, not ignored.
    for path in (f"/api/cases/{cid}/chats", f"/api/cases/{cid}/timeline"):
        paged = await api.get(path, params={"pageSize": 2}, headers=creditor.headers)
        assert (paged.status_code, paged.json()["errors"][0]["field"]) == (422, "pageSize")


async def test_case_tasks_honour_status_and_a_repeated_type_and_default_to_open(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    case_id = await add_case(sessions, creditor)
    generic = make_task(creditor, access=AccessLevel.CREDITOR, case_id=case_id, deadline=None)
    solved = make_task(creditor, access=AccessLevel.CREDITOR, case_id=case_id, deadline=None)
    solved.status = TaskStatus.SOLVED
    reply = make_task(creditor, access=AccessLevel.CREDITOR, case_id=case_id, deadline=None)
    reply.type = TaskType.REPLY_TO_CHAT
    async with transaction(sessions) as session:
        await write_tasks(session, [generic, solved, reply])
    path = f"/api/cases/{case_id}/tasks"

    async def ids(**params: Any) -> set[str]:
        return {t["id"] for t in await _get(api, creditor, path, **params)}

    assert await ids() == {generic.id, reply.id}, "open only when status is omitted"
    assert await ids(status="Solved") == {solved.id}
    assert await ids(status=["Open", "Solved"]) == {generic.id, solved.id, reply.id}
    assert await ids(type="ReplyToChat") == {reply.id}
    assert await ids(type=["ReplyToChat", "Generic"], status=["Open", "Solved"]) == {
        generic.id,
        solved.id,
        reply.id,
    }
    bad = await api.get(path, params={"type": "Nope"}, headers=creditor.headers)
    assert (bad.status_code, bad.json()["errors"][0]["field"]) == (422, "type[0]")


# -- 3. task queues default to Open; leadId ---------------------------------------------------------
async def test_the_task_queue_lists_open_tasks_unless_asked_for_solved_ones(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    open_task = make_task(creditor, access=AccessLevel.CREDITOR, case_id=None, deadline=None)
    solved = make_task(creditor, access=AccessLevel.CREDITOR, case_id=None, deadline=None)
    solved.status = TaskStatus.SOLVED
    async with transaction(sessions) as session:
        await write_tasks(session, [open_task, solved])

    async def ids(**params: Any) -> list[str]:
        return [t["id"] for t in (await _get(api, creditor, "/api/tasks", **params))["tasks"]]

    assert await ids() == [open_task.id]
    assert await ids(status="Solved") == [solved.id]
    assert set(await ids(status=["Open", "Solved"])) == {open_task.id, solved.id}


async def test_quote_tasks_carry_the_lead_id_and_other_tasks_none(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
) -> None:
    case_id = await add_case(sessions, creditor)
    select_winner = make_task(creditor, access=AccessLevel.CREDITOR, case_id=case_id, deadline=None)
    select_winner.type = TaskType.SELECT_QUOTE_WINNER
    generic = make_task(creditor, access=AccessLevel.CREDITOR, case_id=case_id, deadline=None)
    async with transaction(sessions) as session:
        await write_tasks(session, [select_winner, generic])
    tasks = {t["id"]: t for t in (await _get(api, creditor, "/api/tasks"))["tasks"]}
    assert tasks[select_winner.id]["leadId"] == str(case_id)
    assert tasks[generic.id]["leadId"] is None
    assert tasks[select_winner.id]["caseReference"].startswith("REF-"), "the creditor's reference"


# -- 5. case filters, sorting, limit, unknown parameters --------------------------------------------
async def _cases(sessions: async_sessionmaker[AsyncSession], creditor: Actor) -> list[uuid.UUID]:
    """Three cases: Active 300 due 12-01, Closed (Paid) 100 due 11-01, Collecting quotes 200."""
    rows = [
        ("In Collection", None, None, "300.00", dt.date(2026, 12, 1)),
        ("Closed", None, "Paid", "100.00", dt.date(2026, 11, 1)),
        ("Validated", "Collecting quotes", None, "200.00", dt.date(2026, 11, 15)),
    ]
    ids = []
    for n, (status, sub, code, amount, due) in enumerate(rows):
        case_id = await add_case(sessions, creditor, created_at=SEED_TIME + dt.timedelta(hours=n))
        async with transaction(sessions) as session:
            await session.execute(
                update(Case)
                .where(Case.id == case_id)
                .values(
                    status=status,
                    sub_status=sub,
                    close_code=code,
                    amount_to_recover=Decimal(amount),
                    due_date=due,
                )
            )
        ids.append(case_id)
    return ids


async def test_cases_filter_by_statuses_and_ids_sort_by_fields_and_take_limit(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    active, closed, quoting = (str(i) for i in await _cases(sessions, creditor))

    async def listed(**params: Any) -> list[str]:
        return [c["caseId"] for c in (await _get(api, creditor, "/api/cases", **params))["cases"]]

    assert await listed() == [quoting, closed, active], "newest first by default"
    assert await listed(Statuses="Closed") == [closed]
    assert await listed(Statuses=["active", "Pending Verification"]) == [active]
    assert await listed(statuses="Leads,closed") == [quoting, closed], "Debitura's names, commas"
    assert await listed(Ids=[active, quoting]) == [quoting, active]
    assert await listed(ids=f"{closed},{active}", Statuses="Active") == [active]
    assert await listed(Sort="amount") == [closed, quoting, active]
    assert await listed(Sort="Amount:desc") == [active, quoting, closed]
    assert await listed(sort="DueDate:asc") == [closed, quoting, active]
    assert await listed(Sort="CloseCode:desc,DateCreated:asc") == [closed, active, quoting]
    assert await listed(Sort="Lifecycle") == [active, quoting, closed]
    limited = await _get(api, creditor, "/api/cases", limit=2)
    assert [c["caseId"] for c in limited["cases"]] == [quoting, closed]
    assert limited["page"]["pageSize"] == 2
    sorted_page = await _get(api, creditor, "/api/cases", Sort="Date", limit=2)
    assert "nextCursor" not in sorted_page["page"], "a cursor is of the newest-first order"
    for params, field in (
        ({"Statuses": "Merged"}, "statuses[0]"),
        ({"Ids": "not-a-uuid"}, "ids[0]"),
        ({"Sort": "Remainder"}, "sort"),
        ({"Sort": "Date:sideways"}, "sort"),
        ({"limit": 101}, "limit"),
        ({"ids": ",".join(str(uuid.uuid4()) for _ in range(101))}, "ids"),
    ):
        refused = await api.get("/api/cases", params=params, headers=creditor.headers)
        assert refused.status_code == 422, (params, refused.text)
        assert refused.json()["errors"][0]["field"] == field, params


async def test_a_partners_assigned_and_offered_cases_sort_together_by_several_keys(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
) -> None:
    """A partner's list merges two branches (assigned, invited to quote): sorted by the keys
    asked for across both."""
    amounts = ("200.00", "100.00", "200.00")
    assigned = [await add_case(sessions, creditor, partner=partner) for _ in range(2)]
    offered = await add_case(sessions, creditor)
    async with transaction(sessions) as session:
        session.add(CaseInvitation(case_id=offered, partner_id=partner.org_id))
        for case_id, amount in zip([*assigned, offered], amounts, strict=True):
            await session.execute(
                update(Case).where(Case.id == case_id).values(amount_to_recover=Decimal(amount))
            )
    body = await _get(api, partner, "/api/cases", Sort="Amount:desc,Lifecycle:asc")
    got = [c["caseId"] for c in body["cases"]]
    # 200 Pending Verification (offered, Created) before 200 Active (assigned), then 100.
    assert got == [str(offered), str(assigned[0]), str(assigned[1])]
    reverse = await _get(api, partner, "/api/cases", Sort="amount:asc,lifecycle:desc")
    assert [c["caseId"] for c in reverse["cases"]] == [
        str(assigned[1]),
        str(assigned[0]),
        str(offered),
    ]


async def test_an_unknown_query_parameter_is_refused_with_422_naming_it_on_every_endpoint(
    api: httpx.AsyncClient, settings: Settings, creditor: Actor
) -> None:
    refused = await api.get(
        "/api/cases", params={"DebtorIds": str(uuid.uuid4())}, headers=creditor.headers
    )
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "validation_failed"
    assert refused.json()["errors"] == [
        {"field": "DebtorIds", "message": "is not a query parameter of this endpoint"}
    ]
    assert "DebtorIds" in refused.json()["detail"]
    summary = await api.get(
        "/api/cases/analytics/status-summary", params={"Sort": "Date"}, headers=creditor.headers
    )
    assert (summary.status_code, summary.json()["errors"][0]["field"]) == (422, "Sort")

    app = create_app(settings)
    operations = [
        (method, route.path)
        for route in api_routes(app)
        if route.path.startswith("/api/")
        for method in sorted(route.methods)
    ]
    assert len(operations) > 40
    for method, path in operations:
        url = path
        for name in ("case_id", "task_id", "relationship_id", "attachment_id", "token"):
            url = url.replace("{" + name + "}", str(uuid.uuid4()))
        response = await api.request(
            method, url, params={"bogusFilter": "1"}, headers=creditor.headers
        )
        assert response.status_code == 422, (method, path, response.text)
        assert response.json()["errors"] == [
            {"field": "bogusFilter", "message": "is not a query parameter of this endpoint"}
        ], (method, path)


# -- 6. status summary in seed 002's names --------------------------------------------------------
async def test_status_summary_answers_in_seed_002_names(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    await _cases(sessions, creditor)
    summary = await _get(api, creditor, "/api/cases/analytics/status-summary")
    assert summary["totalCases"] == 3
    assert summary["statusBreakdown"]["In Collection"] == 1
    assert summary["statusBreakdown"]["Closed"] == 1
    assert summary["statusBreakdown"]["Created"] == 0
    assert summary["successRate"] == 1.0, "the one finished case was paid"
    assert isinstance(summary["averageResolutionTime"], float)
    assert not {"total", "byStatus", "averageResolutionDays"} & set(summary)


# -- 7. history: who changed it ---------------------------------------------------------------------
async def test_history_shows_api_system_or_the_persons_name_with_the_id_beside_it(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    async with transaction(sessions) as session:
        await session.execute(
            update(User).where(User.id == partner.principal.user_id).values(name="Pia Partner")
        )
    cid = (await in_collection(api, creditor, partner, ops))["caseId"]
    moved = await move(api, partner, cid, status="In Collection", subStatus="First reminder sent")
    assert moved.status_code == 200, moved.text
    history = (await _get(api, creditor, f"/api/cases/{cid}/history"))["history"]
    authors = [(h["changedBy"], h["changedById"]) for h in history]
    assert authors[0] == ("API", None)
    assert ("System", None) in authors
    assert authors[-1] == ("Pia Partner", str(partner.principal.user_id))
    ops_name = ops.principal.user_name or ops.principal.user_email
    assert (ops_name, str(ops.principal.user_id)) in authors, "ops assigned it"
    # The partner reads the platform's change without its author.
    partner_view = (await _get(api, partner, f"/api/cases/{cid}/history"))["history"]
    assert ("Platform", None) in [(h["changedBy"], h["changedById"]) for h in partner_view]


# -- 9. case creation as Debitura clients send it ---------------------------------------------------
async def test_a_case_is_created_from_a_date_time_date_and_without_a_due_date(
    api: httpx.AsyncClient, creditor: Actor
) -> None:
    await sign(api, creditor)
    body = case_body(date="2026-09-01T00:00:00")
    del body["dueDate"]
    created = await api.post("/api/cases", json=body, headers=creditor.headers)
    assert created.status_code == 201, created.text
    assert (created.json()["date"], created.json()["dueDate"]) == ("2026-09-01", None)
    fetched = await _get(api, creditor, f"/api/cases/{created.json()['caseId']}")
    assert (fetched["date"], fetched["dueDate"]) == ("2026-09-01", None)
    both = case_body(date="2026-09-01T00:00:00", dueDate="2026-10-01T00:00:00Z")
    with_due = await api.post("/api/cases", json=both, headers=creditor.headers)
    assert with_due.status_code == 201, with_due.text
    assert with_due.json()["dueDate"] == "2026-10-01"
    cleared = await api.patch(
        f"/api/cases/{with_due.json()['caseId']}", json={"dueDate": None}, headers=creditor.headers
    )
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["dueDate"] is None, "the due date is optional: null removes it"
    late = case_body(date="2026-09-01T10:00:00", dueDate="2026-08-01T00:00:00")
    refused = await api.post("/api/cases", json=late, headers=creditor.headers)
    assert (refused.status_code, refused.json()["errors"][0]["field"]) == (422, "dueDate")
    for bad in ("2026-09-01T25:00:00", "1 Sept 2026"):
        wrong = await api.post("/api/cases", json=case_body(date=bad), headers=creditor.headers)
        assert (wrong.status_code, wrong.json()["errors"][0]["field"]) == (422, "date"), bad
