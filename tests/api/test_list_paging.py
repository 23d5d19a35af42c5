"""The big lists (``GET /api/tasks``, ``GET /api/cases``) page by cursor as by number, count
no further than COUNT_LIMIT, and keep the visibility rules while reading stored columns."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.projection import _sync_invitations, write_tasks
from api.pagination import COUNT_LIMIT
from domain.enums import OrgKind
from domain.tasks import AccessLevel, Scope, TaskType
from store.cursor import encode_cursor
from store.db import transaction
from store.models import NO_DEADLINE, Case, CaseInvitation, TaskRow
from store.tasks import refresh_case_tasks
from tests.support import Actor, add_case, make_actor, make_task

NOW = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)


async def all_pages(
    api: httpx.AsyncClient, actor: Actor, path: str, **params: Any
) -> tuple[list[str], list[dict[str, Any]]]:
    """Every item id, following ``nextCursor`` from the first page; and each page's envelope."""
    ids: list[str] = []
    envelopes = []
    query: dict[str, Any] = {"pageSize": 4, **params}
    while True:
        response = await api.get(path, params=query, headers=actor.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        key = "id" if path.endswith("tasks") else "caseId"
        ids += [item[key] for item in body["tasks" if path.endswith("tasks") else "cases"]]
        envelopes.append(body["page"])
        if "nextCursor" not in body["page"]:
            return ids, envelopes
        query = {"pageSize": 4, **params, "after": body["page"]["nextCursor"]}


async def by_number(api: httpx.AsyncClient, actor: Actor, path: str) -> list[str]:
    response = await api.get(path, params={"pageSize": 100}, headers=actor.headers)
    key = "id" if path.endswith("tasks") else "caseId"
    return [item[key] for item in response.json()["tasks" if path.endswith("tasks") else "cases"]]


async def test_tasks_page_by_cursor_in_the_order_of_page_numbers_with_ties_and_no_deadlines(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    case_id = await add_case(sessions, creditor)
    deadlines = [NOW + dt.timedelta(days=d) for d in (3, 1, 1, 2)] + [None] * 3
    tasks = [
        make_task(creditor, access=AccessLevel.CREDITOR, case_id=case_id, deadline=d)
        for d in deadlines * 2  # equal deadlines and equal creation times: the id breaks ties
    ]
    async with transaction(sessions) as session:
        await write_tasks(session, tasks)

    ids, envelopes = await all_pages(api, creditor, "/api/tasks")

    assert ids == await by_number(api, creditor, "/api/tasks")
    assert sorted(ids) == sorted(t.id for t in tasks)
    listed = {t.id: t for t in tasks}
    assert [listed[i].deadline for i in ids] == sorted(
        (t.deadline for t in tasks), key=lambda d: (d is None, d or NOW)
    )
    assert [e["responseCount"] for e in envelopes] == [4, 4, 4, 2]
    assert all(e["currentPage"] is None for e in envelopes[1:])
    assert all(e["totalResults"] == 14 and "totalResultsExact" not in e for e in envelopes)


async def test_cases_page_by_cursor_newest_first_for_creditor_and_partner_with_invitations(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
) -> None:
    assigned = [
        await add_case(sessions, creditor, partner=partner, created_at=NOW - dt.timedelta(days=d))
        for d in (5, 1, 3, 3, 8)
    ]
    invited = [
        await add_case(sessions, creditor, created_at=NOW - dt.timedelta(days=d)) for d in (2, 3, 9)
    ]
    other = await add_case(sessions, creditor, created_at=NOW)  # the partner never sees it
    async with transaction(sessions) as session:
        session.add_all(CaseInvitation(case_id=c, partner_id=partner.org_id) for c in invited)

    creditor_ids, _ = await all_pages(api, creditor, "/api/cases")
    partner_ids, envelopes = await all_pages(api, partner, "/api/cases")

    assert creditor_ids == await by_number(api, creditor, "/api/cases")
    assert len(creditor_ids) == 9
    assert partner_ids == await by_number(api, partner, "/api/cases")
    assert sorted(partner_ids) == sorted(str(c) for c in assigned + invited)
    assert str(other) not in partner_ids
    assert [e["totalResults"] for e in envelopes] == [8, 8]
    # A filter applies to both kinds of visible case, page after page.
    filtered, _ = await all_pages(api, partner, "/api/cases", status="Created")
    assert sorted(filtered) == sorted(str(c) for c in invited)


async def test_a_malformed_or_foreign_cursor_is_a_422_problem(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    task_cursor = encode_cursor("tasks", (NOW.isoformat(), NOW.isoformat(), "x"))
    for path, after in (
        ("/api/tasks", "not a cursor"),
        ("/api/tasks", "W10"),  # "[]"
        ("/api/tasks", encode_cursor("tasks", ("yesterday", NOW.isoformat(), "x"))),
        ("/api/tasks", encode_cursor("tasks", ("2026-11-02T09:00:00", NOW.isoformat(), "x"))),
        ("/api/cases", task_cursor),  # a cursor of another list
        ("/api/cases", encode_cursor("cases", (NOW.isoformat(), "not-a-uuid"))),
    ):
        response = await api.get(path, params={"after": after}, headers=creditor.headers)
        assert response.status_code == 422, (path, after, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "validation_failed"
        assert [e["field"] for e in response.json()["errors"]] == ["after"]
    both = await api.get(
        "/api/tasks", params={"after": task_cursor, "page": 2}, headers=creditor.headers
    )
    assert both.status_code == 422
    assert [e["field"] for e in both.json()["errors"]] == ["after"]


async def test_total_results_stop_at_the_count_limit_and_say_so(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    rows = [
        {
            "id": str(uuid.uuid4()),
            "version": 1,
            "workflow_id": "paging-test",
            "key": None,
            "type": TaskType.GENERIC.value,
            "title": "Many",
            "description": "",
            "status": "Open",
            "access_level": AccessLevel.CREDITOR.value,
            "scope": Scope.ACCOUNT.value,
            "owner_org_id": creditor.org_id,
            "deadline": None,
            "sort_deadline": NO_DEADLINE,
            "date_created": NOW,
        }
        for _ in range(COUNT_LIMIT + 1)
    ]
    async with transaction(sessions) as session:
        await session.execute(insert(TaskRow), rows)
    page = (await api.get("/api/tasks", headers=creditor.headers)).json()["page"]
    assert page["totalResults"] == COUNT_LIMIT
    assert page["totalResultsExact"] is False
    assert page["totalPages"] == COUNT_LIMIT // 10
    assert "nextCursor" in page
    async with transaction(sessions) as session:
        await session.execute(delete(TaskRow).where(TaskRow.id == rows[0]["id"]))
    exact = (await api.get("/api/tasks", headers=creditor.headers)).json()["page"]
    assert (exact["totalResults"], "totalResultsExact" in exact) == (COUNT_LIMIT, False)


async def test_stored_visibility_keeps_organisations_and_sides_apart(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    """Another creditor sees none of this creditor's tasks or cases; the partner sees its own
    tasks on a case it works or is invited to and never the creditor's; when the case goes to
    another partner (or the invitation ends) its tasks there disappear from every list."""
    rival = await make_actor(sessions, OrgKind.CREDITOR)
    other_partner = await make_actor(sessions, OrgKind.PARTNER)
    worked = await add_case(sessions, creditor, partner=partner, reference="WORKED-1")
    lead = await add_case(sessions, creditor)
    async with transaction(sessions) as session:
        session.add(CaseInvitation(case_id=lead, partner_id=partner.org_id))
    creditor_task = make_task(creditor, access=AccessLevel.CREDITOR, case_id=worked, deadline=NOW)
    partner_task = make_task(partner, access=AccessLevel.PARTNER, case_id=worked, deadline=NOW)
    lead_task = make_task(partner, access=AccessLevel.PARTNER, case_id=lead, deadline=None)
    account_task = make_task(partner, access=AccessLevel.PARTNER, case_id=None, deadline=None)
    async with transaction(sessions) as session:
        await write_tasks(session, [creditor_task, partner_task, lead_task, account_task])

    async def ids(actor: Actor, path: str = "/api/tasks") -> set[str]:
        return set(await by_number(api, actor, path))

    assert await ids(creditor) == {creditor_task.id}
    assert await ids(partner) == {partner_task.id, lead_task.id, account_task.id}
    assert await ids(rival) == set() and await ids(rival, "/api/cases") == set()
    assert await ids(other_partner) == set()
    assert await ids(ops) >= {creditor_task.id, partner_task.id, lead_task.id}
    listed = (await api.get("/api/tasks", headers=creditor.headers)).json()["tasks"]
    assert listed[0]["caseReference"] == "WORKED-1"

    # The case goes to another partner and the invitation ends: refreshed from the case.
    async with transaction(sessions) as session:
        await session.execute(
            update(Case).where(Case.id == worked).values(partner_id=other_partner.org_id)
        )
        await session.execute(delete(CaseInvitation).where(CaseInvitation.case_id == lead))
        await refresh_case_tasks(session, {worked, lead})
    assert await ids(partner) == {account_task.id}
    assert await ids(partner, "/api/cases") == set()
    for task_id in (partner_task.id, lead_task.id):
        assert (await api.get(f"/api/tasks/{task_id}", headers=partner.headers)).status_code == 404
    assert await ids(creditor) == {creditor_task.id}
    async with sessions() as session:
        hidden = set(
            await session.scalars(select(TaskRow.id).where(TaskRow.case_visible.is_(False)))
        )
    assert hidden == {partner_task.id, lead_task.id}


async def test_the_case_projection_refreshes_its_tasks_visibility(
    sessions: async_sessionmaker[AsyncSession], creditor: Actor, partner: Actor
) -> None:
    """``_sync_invitations`` (run on every case write) brings the tasks of the case up to date,
    so a partner's task on a lead hides when its invitation is withdrawn."""
    from domain.accounts import OrgRef
    from domain.cases import CaseRecord, CaseSubmission, Quote, QuoteStatus
    from tests.support import case_body

    lead = await add_case(sessions, creditor)
    async with transaction(sessions) as session:
        session.add(CaseInvitation(case_id=lead, partner_id=partner.org_id))
    task = make_task(partner, access=AccessLevel.PARTNER, case_id=lead, deadline=None)
    async with transaction(sessions) as session:
        await write_tasks(session, [task])
    ref = OrgRef(id=partner.org_id, name="p", country="DK", timezone="Europe/Copenhagen")
    record = CaseRecord(
        case_id=lead,
        case_number="CL-2026-000001",
        creditor=creditor.org_ref,
        submitted_by=creditor.principal.user_id,
        submission=CaseSubmission.model_validate(case_body()),
        quotes=[
            Quote(id="q1", partner=ref, requested_at=NOW, status=QuoteStatus.WITHDRAWN),
        ],
    )
    async with sessions() as session:
        before = await session.scalar(select(TaskRow.case_visible).where(TaskRow.id == task.id))
    async with transaction(sessions) as session:
        await _sync_invitations(session, record)
    async with sessions() as session:
        after = await session.scalar(select(TaskRow.case_visible).where(TaskRow.id == task.id))
    assert (before, after) == (True, False)
