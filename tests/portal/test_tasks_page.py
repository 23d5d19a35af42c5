"""The Tasks menu: the caller's tasks only, open by default, filtered by type, due date and
assignee, each linking to the page that solves it, in a fixed number of statements."""

from __future__ import annotations

import datetime as dt
import re

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.projection import write_tasks
from domain.enums import OrgKind
from domain.tasks import AccessLevel, TaskStatus, TaskType
from store.db import transaction
from tests.portal.support import signed_in
from tests.support import SEED_TIME, Actor, add_case, make_actor, make_task, reads

TASK_LINK = re.compile(r'href="https://portal\.example\.test/tasks/([0-9a-f-]{36})"')


def listed(page: httpx.Response) -> list[str]:
    """The task ids the page links to (a Generic task's solution link is its own page)."""
    return TASK_LINK.findall(page.text)


async def test_the_tasks_menu_lists_only_the_callers_side_and_organisation(
    portal: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
) -> None:
    other = await make_actor(sessions, OrgKind.CREDITOR)
    case_id = await add_case(sessions, creditor, partner=partner)
    mine = make_task(
        creditor, access=AccessLevel.CREDITOR, case_id=case_id, deadline=SEED_TIME
    ).model_copy(update={"overdue_since": SEED_TIME})
    theirs = make_task(partner, access=AccessLevel.PARTNER, case_id=case_id, deadline=SEED_TIME)
    foreign = make_task(other, access=AccessLevel.CREDITOR, case_id=None, deadline=SEED_TIME)
    async with transaction(sessions) as session:
        await write_tasks(session, [mine, theirs, foreign])

    await signed_in(portal, sessions, creditor)
    page = await portal.get("/portal/tasks")

    assert page.status_code == 200
    assert listed(page) == [mine.id]
    assert "Overdue" in page.text  # its deadline timer has fired


async def test_open_is_the_default_and_completed_tasks_are_one_click_away(
    portal: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    case_id = await add_case(sessions, creditor)
    open_task = make_task(creditor, access=AccessLevel.CREDITOR, case_id=case_id, deadline=None)
    solved = make_task(creditor, access=AccessLevel.CREDITOR, case_id=case_id, deadline=None)
    solved = solved.model_copy(
        update={"status": TaskStatus.SOLVED, "date_solved": SEED_TIME + dt.timedelta(hours=1)}
    )
    async with transaction(sessions) as session:
        await write_tasks(session, [open_task, solved])
    await signed_in(portal, sessions, creditor)

    assert listed(await portal.get("/portal/tasks")) == [open_task.id]
    completed = await portal.get("/portal/tasks", params={"status": "Solved"})
    assert listed(completed) == [solved.id]
    assert "completed" in completed.text


async def test_filters_by_type_due_date_and_assignee(
    portal: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    case_id = await add_case(sessions, creditor)
    early = make_task(
        creditor,
        access=AccessLevel.CREDITOR,
        case_id=case_id,
        deadline=dt.datetime(2026, 12, 3, 22, 59, tzinfo=dt.UTC),
    )
    late = make_task(
        creditor,
        access=AccessLevel.CREDITOR,
        case_id=case_id,
        deadline=dt.datetime(2026, 12, 10, 22, 59, tzinfo=dt.UTC),
    )
    late = late.model_copy(update={"assignee_id": creditor.principal.user_id})
    async with transaction(sessions) as session:
        await write_tasks(session, [early, late])
    await signed_in(portal, sessions, creditor)

    async def ids(**params: str) -> list[str]:
        page = await portal.get("/portal/tasks", params=params)
        assert page.status_code == 200
        return listed(page)

    assert await ids() == [early.id, late.id]
    # 3 December in Copenhagen ends at 22:59:59 UTC: the early task is due that day.
    assert await ids(due_to="2026-12-03") == [early.id]
    assert await ids(due_from="2026-12-04") == [late.id]
    assert await ids(assignee=str(creditor.principal.user_id)) == [late.id]
    assert await ids(type=TaskType.GENERIC.value) == [early.id, late.id]
    assert await ids(type=TaskType.SIGN_CONTRACT.value) == []


async def test_a_bad_filter_says_what_is_wrong_and_lists_unfiltered(
    portal: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    await signed_in(portal, sessions, creditor)
    page = await portal.get("/portal/tasks", params={"due_from": "tomorrow", "type": "Nope"})
    assert page.status_code == 200
    assert "is not a date" in page.text and "is not a task type" in page.text
    bad_status = await portal.get("/portal/tasks", params={"status": "Maybe"})
    assert bad_status.status_code == 422
    assert bad_status.headers["content-type"].startswith("text/html")


async def test_a_partner_sees_partner_task_types_in_the_type_filter_only(
    portal: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], partner: Actor
) -> None:
    await signed_in(portal, sessions, partner)
    page = await portal.get("/portal/tasks")
    assert "Review New Case" in page.text and "Sign Contract" not in page.text


async def test_the_tasks_menu_pages_and_reads_the_same_number_of_statements_for_any_page(
    portal: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    case_id = await add_case(sessions, creditor)
    tasks = [
        make_task(
            creditor,
            access=AccessLevel.CREDITOR,
            case_id=case_id,
            deadline=SEED_TIME + dt.timedelta(hours=n),
        )
        for n in range(30)
    ]
    async with transaction(sessions) as session:
        await write_tasks(session, tasks[:2])
    await signed_in(portal, sessions, creditor)
    with reads() as few:
        await portal.get("/portal/tasks")
    async with transaction(sessions) as session:
        await write_tasks(session, tasks[2:])
    with reads() as many:
        first = await portal.get("/portal/tasks")

    assert len(many) == len(few) <= 3
    assert listed(first) == [t.id for t in tasks[:25]]
    assert 'rel="next"' in first.text
    second = await portal.get("/portal/tasks", params={"page": "2"})
    assert listed(second) == [t.id for t in tasks[25:]]
    assert 'rel="prev"' in second.text and 'rel="next"' not in second.text
