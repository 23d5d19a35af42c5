"""The task page's actions run the API's own commands: postpone keeps the original deadline,
reassign stays within the organisation, Generic tasks are closed by hand, and whatever the API
refuses is refused here with its message, changing nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.enums import OrgKind
from tests.api.test_tasks import ready_case, tasks_of
from tests.portal.support import post_form, sign_in, with_password
from tests.support import Actor, make_actor


async def generic_task(api: httpx.AsyncClient, creditor: Actor, case_id: str) -> dict[str, Any]:
    deadline = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).isoformat()
    created = await api.post(
        "/api/tasks",
        json={"caseId": case_id, "title": "Call the debtor", "deadline": deadline},
        headers=creditor.headers,
    )
    assert created.status_code == 201, created.text
    return dict(created.json())


async def task_of(api: httpx.AsyncClient, actor: Actor, task_id: str) -> dict[str, Any]:
    got = await api.get(f"/api/tasks/{task_id}", headers=actor.headers)
    assert got.status_code == 200, got.text
    return dict(got.json())


async def test_postpone_keeps_the_original_deadline_and_shows_both(
    live_portal: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    case = await ready_case(live_portal, creditor)
    task = await generic_task(live_portal, creditor, case["caseId"])
    await sign_in(live_portal, await with_password(sessions, creditor))
    page = f"/portal/tasks/{task['id']}"
    day = (dt.date.today() + dt.timedelta(days=20)).isoformat()

    done = await post_form(
        live_portal, page + "/postpone", {"deadline": day, "reason": "Debtor on holiday"}, page=page
    )

    assert done.status_code == 303 and done.headers["location"] == page + "?done=postponed"
    after = await task_of(live_portal, creditor, task["id"])
    assert after["originalDeadline"] == task["deadline"]
    assert after["deadline"].startswith(day)
    shown = await live_portal.get(done.headers["location"])
    assert "original deadline is kept" in shown.text and "originally" in shown.text


async def test_a_deadline_in_the_past_is_refused_with_the_apis_reason_and_changes_nothing(
    live_portal: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    case = await ready_case(live_portal, creditor)
    task = await generic_task(live_portal, creditor, case["caseId"])
    await sign_in(live_portal, await with_password(sessions, creditor))
    page = f"/portal/tasks/{task['id']}"

    refused = await post_form(
        live_portal, page + "/postpone", {"deadline": "2020-01-01", "reason": "x"}, page=page
    )
    no_date = await post_form(
        live_portal, page + "/postpone", {"deadline": "soon", "reason": "x"}, page=page
    )

    assert refused.status_code == 422 and "later than now" in refused.text
    assert 'value="2020-01-01"' in refused.text  # the form keeps what was typed
    assert no_date.status_code == 422 and "pick a date" in no_date.text
    assert (await task_of(live_portal, creditor, task["id"]))["deadline"] == task["deadline"]


async def test_reassign_within_the_organisation_only(
    live_portal: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    colleague = await make_actor(sessions, OrgKind.CREDITOR, org_id=creditor.org_id)
    stranger = await make_actor(sessions, OrgKind.CREDITOR)
    case = await ready_case(live_portal, creditor)
    task = await generic_task(live_portal, creditor, case["caseId"])
    await sign_in(live_portal, await with_password(sessions, creditor))
    page = f"/portal/tasks/{task['id']}"

    form = await live_portal.get(page)
    assert str(colleague.principal.user_id) in form.text
    assert str(stranger.principal.user_id) not in form.text
    moved = await post_form(
        live_portal, page + "/assign", {"user_id": str(colleague.principal.user_id)}, page=page
    )
    assert moved.status_code == 303
    assert (await task_of(live_portal, creditor, task["id"]))["assignee"]["id"] == str(
        colleague.principal.user_id
    )

    refused = await post_form(
        live_portal, page + "/assign", {"user_id": str(stranger.principal.user_id)}, page=page
    )
    assert refused.status_code == 422 and "active user of the organisation" in refused.text
    assert (await task_of(live_portal, creditor, task["id"]))["assignee"]["id"] == str(
        colleague.principal.user_id
    )


async def test_a_generic_task_is_closed_by_hand_and_leaves_the_open_list(
    live_portal: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    case = await ready_case(live_portal, creditor)
    task = await generic_task(live_portal, creditor, case["caseId"])
    await sign_in(live_portal, await with_password(sessions, creditor))
    page = f"/portal/tasks/{task['id']}"
    assert task["solutionUrl"].endswith(page.removeprefix("/portal"))
    assert task["id"] in (await live_portal.get("/portal/tasks")).text

    closed = await post_form(live_portal, page + "/close", {"reason": "Called"}, page=page)

    assert closed.status_code == 303
    assert (await task_of(live_portal, creditor, task["id"]))["status"] == "Solved"
    assert task["id"] not in (await live_portal.get("/portal/tasks")).text
    assert task["id"] in (await live_portal.get("/portal/tasks?status=Solved")).text
    again = await live_portal.get(page)
    assert "Postpone" not in again.text  # a solved task has no actions


async def test_only_tasks_the_catalogue_allows_are_marked_as_done(
    live_portal: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    case = await ready_case(live_portal, creditor)
    task = await generic_task(live_portal, creditor, case["caseId"])
    await sign_in(live_portal, await with_password(sessions, creditor))
    page = f"/portal/tasks/{task['id']}"
    assert "Mark as done" not in (await live_portal.get(page)).text

    refused = await post_form(live_portal, page + "/done", {}, page=page)

    assert refused.status_code == 409 and "cannot be marked as done" in refused.text
    assert (await task_of(live_portal, creditor, task["id"]))["status"] == "Open"


async def test_another_sides_or_organisations_task_is_a_404_and_a_form_needs_its_token(
    live_portal: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
) -> None:
    case = await ready_case(live_portal, creditor)
    task = await generic_task(live_portal, creditor, case["caseId"])
    page = f"/portal/tasks/{task['id']}"
    await sign_in(live_portal, await with_password(sessions, partner))
    assert (await live_portal.get(page)).status_code == 404
    assert (
        await post_form(live_portal, page + "/close", {}, page="/portal/tasks")
    ).status_code == 404
    await sign_in(live_portal, await with_password(sessions, creditor))
    forged = await live_portal.post(page + "/close", data={"reason": "x"})
    assert forged.status_code == 403
    assert (await tasks_of(live_portal, creditor, status="Open"))[0]["id"] == task["id"]


async def test_a_generic_task_is_added_from_the_case_page_and_opens_its_own_page(
    live_portal: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    case = await ready_case(live_portal, creditor)
    await sign_in(live_portal, await with_password(sessions, creditor))
    page = f"/portal/cases/{case['caseId']}"
    day = (dt.date.today() + dt.timedelta(days=9)).isoformat()

    added = await post_form(
        live_portal, page + "/tasks", {"title": "Send the invoice copy", "deadline": day}, page=page
    )

    assert added.status_code == 303 and added.headers["location"].endswith("?done=created")
    task = (await tasks_of(live_portal, creditor, type="Generic"))[0]
    assert task["title"] == "Send the invoice copy" and task["deadline"].startswith(day)
    assert "Send the invoice copy" in (await live_portal.get(page)).text  # an Action Item now

    empty = await post_form(live_portal, page + "/tasks", {"title": "  "}, page=page)
    assert empty.status_code == 422 and "title" in empty.text
    assert len(await tasks_of(live_portal, creditor, type="Generic")) == 1
