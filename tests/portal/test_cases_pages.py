"""The Cases list and the case page: only what the caller may see, seed 004's filters, the
status explained, and the Action Items panel grouped into Overdue and Upcoming."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.projection import write_tasks
from domain.enums import Lifecycle, OrgKind
from domain.lifecycle import LIFECYCLE_MEANINGS
from domain.tasks import AccessLevel, TaskType
from store.db import transaction
from store.models import Case, CaseInvitation
from tests.portal.support import signed_in
from tests.support import SEED_TIME, Actor, add_case, make_actor, make_task, reads

CASE_LINK = re.compile(r'href="/portal/cases/([0-9a-f-]{36})"')


def listed(page: httpx.Response) -> list[str]:
    assert page.status_code == 200, page.text
    return CASE_LINK.findall(page.text)


async def test_a_creditor_lists_its_own_cases_newest_first(
    portal: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    other = await make_actor(sessions, OrgKind.CREDITOR)
    older = await add_case(sessions, creditor, created_at=SEED_TIME - dt.timedelta(days=2))
    newer = await add_case(sessions, creditor, created_at=SEED_TIME)
    await add_case(sessions, other)
    await signed_in(portal, sessions, creditor)

    page = await portal.get("/portal/cases")

    assert listed(page) == [str(newer), str(older)]
    assert "Pending Verification" in page.text and "2 cases" in page.text


async def test_a_partner_sees_assigned_and_offered_cases_and_which_is_which(
    portal: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
) -> None:
    assigned = await add_case(sessions, creditor, partner=partner)
    offered = await add_case(sessions, creditor, created_at=SEED_TIME - dt.timedelta(days=1))
    hidden = await add_case(sessions, creditor, created_at=SEED_TIME - dt.timedelta(days=2))
    async with transaction(sessions) as session:
        session.add(CaseInvitation(case_id=offered, partner_id=partner.org_id))
    await signed_in(portal, sessions, partner)

    page = await portal.get("/portal/cases")

    assert listed(page) == [str(assigned), str(offered)]
    assert "Cases received" in page.text and page.text.count("(offered to you)") == 1
    assert (await portal.get(f"/portal/cases/{hidden}")).status_code == 404


async def test_another_organisations_case_page_is_a_404(
    portal: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    other = await make_actor(sessions, OrgKind.CREDITOR)
    theirs = await add_case(sessions, other)
    await signed_in(portal, sessions, creditor)
    for path in (f"/portal/cases/{theirs}", f"/portal/cases/{uuid.uuid4()}"):
        page = await portal.get(path)
        assert page.status_code == 404
        assert "text/html" in page.headers["content-type"]


async def test_the_case_list_filters_by_status_debtor_amount_and_date(
    portal: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
) -> None:
    active = await add_case(sessions, creditor, partner=partner)  # In Collection: Active
    pending = await add_case(sessions, creditor, created_at=SEED_TIME - dt.timedelta(days=1))
    async with transaction(sessions) as session:
        await session.execute(
            update(Case)
            .where(Case.id == pending)
            .values(
                debtor_name="Hansen Tømrer ApS",
                amount_to_recover=5000,
                last_status_change=SEED_TIME - dt.timedelta(days=10),
            )
        )
    await signed_in(portal, sessions, creditor)

    async def ids(**params: str) -> list[str]:
        return listed(await portal.get("/portal/cases", params=params))

    assert await ids(lifecycle=Lifecycle.ACTIVE.value) == [str(active)]
    assert await ids(lifecycle=Lifecycle.PENDING_VERIFICATION.value) == [str(pending)]
    assert await ids(debtor="tømrer") == [str(pending)]
    assert await ids(amount_from="1000") == [str(pending)]
    assert await ids(amount_to="1000") == [str(active)]
    # The pending case's status last changed on 23 October.
    assert await ids(changed_to="2026-10-25") == [str(pending)]
    assert await ids(changed_from="2026-10-25") == [str(active)]


async def test_a_bad_case_filter_says_what_is_wrong(
    portal: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    await signed_in(portal, sessions, creditor)
    page = await portal.get("/portal/cases", params={"amount_from": "lots", "changed_to": "x"})
    assert page.status_code == 200
    assert "is not an amount" in page.text and "is not a date" in page.text


async def test_the_case_page_explains_its_status_and_close_code(
    portal: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
) -> None:
    case_id = await add_case(sessions, creditor, partner=partner)
    await signed_in(portal, sessions, creditor)
    page = await portal.get(f"/portal/cases/{case_id}")
    assert page.status_code == 200
    assert LIFECYCLE_MEANINGS[Lifecycle.ACTIVE] in page.text

    async with transaction(sessions) as session:
        await session.execute(
            update(Case).where(Case.id == case_id).values(status="Closed", close_code="Paid")
        )
    closed = await portal.get(f"/portal/cases/{case_id}")
    assert "Close code: Paid" in closed.text and "The debtor paid the full amount." in closed.text


async def test_the_action_items_panel_groups_overdue_and_upcoming_and_opens_when_pending(
    portal: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
) -> None:
    case_id = await add_case(sessions, creditor, partner=partner)
    await signed_in(portal, sessions, creditor)
    empty = await portal.get(f"/portal/cases/{case_id}")
    assert '<details class="action-items" id="action-items">' in empty.text  # closed

    overdue = make_task(
        creditor, access=AccessLevel.CREDITOR, case_id=case_id, deadline=SEED_TIME
    ).model_copy(update={"title": "Answer the partner", "overdue_since": SEED_TIME})
    upcoming = make_task(
        creditor,
        access=AccessLevel.CREDITOR,
        case_id=case_id,
        deadline=SEED_TIME + dt.timedelta(days=30),
    ).model_copy(update={"title": "Check the plan"})
    partners = make_task(
        partner, access=AccessLevel.PARTNER, case_id=case_id, deadline=SEED_TIME
    ).model_copy(update={"title": "Partner-only work"})
    async with transaction(sessions) as session:
        await write_tasks(session, [overdue, upcoming, partners])

    page = await portal.get(f"/portal/cases/{case_id}")

    assert '<details class="action-items" id="action-items" open>' in page.text
    panel = page.text.split('id="action-items"')[1].split("</details>")[0]
    assert panel.index("Overdue") < panel.index("Answer the partner")
    assert panel.index("Answer the partner") < panel.index("Upcoming")
    assert panel.index("Upcoming") < panel.index("Check the plan")
    assert "Partner-only work" not in page.text


async def test_the_cases_list_and_case_page_read_a_fixed_number_of_statements(
    portal: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
) -> None:
    first = await add_case(sessions, creditor, partner=partner)
    await signed_in(portal, sessions, creditor)
    with reads() as few_list:
        await portal.get("/portal/cases")
    with reads() as few_case:
        await portal.get(f"/portal/cases/{first}")
    for n in range(20):
        await add_case(
            sessions, creditor, partner=partner, created_at=SEED_TIME - dt.timedelta(hours=n + 1)
        )
    tasks = [
        make_task(creditor, access=AccessLevel.CREDITOR, case_id=first, deadline=SEED_TIME)
        for _ in range(10)
    ]
    async with transaction(sessions) as session:
        await write_tasks(session, tasks)
    with reads() as many_list:
        await portal.get("/portal/cases")
    with reads() as many_case:
        await portal.get(f"/portal/cases/{first}")
    assert len(many_list) == len(few_list)
    assert len(many_case) == len(few_case)


async def test_ops_see_every_organisations_cases_and_open_a_workflow_in_the_temporal_ui(
    portal: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    ops: Actor,
) -> None:
    other = await make_actor(sessions, OrgKind.CREDITOR)
    mine = await add_case(sessions, creditor)
    theirs = await add_case(sessions, other, created_at=SEED_TIME - dt.timedelta(days=1))
    await signed_in(portal, sessions, ops)

    assert listed(await portal.get("/portal/cases")) == [str(mine), str(theirs)]
    page = await portal.get(f"/portal/cases/{theirs}")
    assert page.status_code == 200
    assert f"/namespaces/default/workflows/case-{theirs}" in page.text
    assert "(ops, read-only)" in page.text


async def test_a_creditor_gets_no_temporal_ui_link(
    portal: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    case_id = await add_case(sessions, creditor)
    await signed_in(portal, sessions, creditor)
    assert "Temporal Web UI" not in (await portal.get(f"/portal/cases/{case_id}")).text


async def test_the_case_list_sorts_as_chosen_for_creditors_and_partners(
    portal: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
) -> None:
    ids = [
        await add_case(
            sessions, creditor, partner=partner, created_at=SEED_TIME - dt.timedelta(days=d)
        )
        for d in (3, 1, 2)
    ]
    offered = await add_case(sessions, creditor, created_at=SEED_TIME - dt.timedelta(days=4))
    async with transaction(sessions) as session:
        session.add(CaseInvitation(case_id=offered, partner_id=partner.org_id))
        for case_id, amount in zip([*ids, offered], (500, 100, 300, 200), strict=True):
            await session.execute(
                update(Case).where(Case.id == case_id).values(amount_to_recover=amount)
            )
    newest = [str(ids[1]), str(ids[2]), str(ids[0])]
    by_amount = [str(ids[0]), str(ids[2]), str(offered), str(ids[1])]
    await signed_in(portal, sessions, creditor)
    assert listed(await portal.get("/portal/cases")) == [*newest, str(offered)]
    assert listed(await portal.get("/portal/cases", params={"sort": "amount-high"})) == by_amount
    oldest = listed(await portal.get("/portal/cases", params={"sort": "oldest"}))
    assert oldest == [str(offered), *reversed(newest)]
    bad = await portal.get("/portal/cases", params={"sort": "random"})
    assert "is not an order of the list" in bad.text
    # A partner's list merges its assigned and offered cases in the same order.
    await signed_in(portal, sessions, partner)
    assert listed(await portal.get("/portal/cases", params={"sort": "amount-high"})) == by_amount
    assert listed(await portal.get("/portal/cases", params={"sort": "amount-low"})) == list(
        reversed(by_amount)
    )


async def test_an_action_item_the_catalogue_lets_be_marked_done_has_its_button_in_the_panel(
    portal: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
) -> None:
    case_id = await add_case(sessions, creditor, partner=partner)
    more_info = make_task(
        creditor, access=AccessLevel.CREDITOR, case_id=case_id, deadline=SEED_TIME
    ).model_copy(update={"type": TaskType.MORE_INFO_NEEDED})
    generic = make_task(creditor, access=AccessLevel.CREDITOR, case_id=case_id, deadline=None)
    async with transaction(sessions) as session:
        await write_tasks(session, [more_info, generic])
    await signed_in(portal, sessions, creditor)
    page = await portal.get(f"/portal/cases/{case_id}")
    assert f'action="/portal/tasks/{more_info.id}/done"' in page.text
    assert f'action="/portal/tasks/{generic.id}/done"' not in page.text
    assert f'href="/portal/cases/{case_id}/chat"' in page.text
