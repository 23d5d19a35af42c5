"""``GET /api/cases/by-creditor-reference/{ref}`` and ``GET /api/cases/case-reference/{ref}``."""

from __future__ import annotations

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.enums import OrgKind
from store.models import Case
from tests.support import Actor, add_case, make_actor


async def _number(sessions: async_sessionmaker[AsyncSession], case_id: object) -> str:
    async with sessions() as session:
        number = await session.scalar(select(Case.case_number).where(Case.id == case_id))
    assert number is not None
    return number


async def test_creditor_reads_its_case_by_its_own_reference_as_by_its_id(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    case_id = await add_case(sessions, creditor, reference="INV 2026/17")
    await add_case(sessions, creditor, reference="INV 2026/18")
    by_id = await api.get(f"/api/cases/{case_id}", headers=creditor.headers)
    found = await api.get(
        "/api/cases/by-creditor-reference/INV%202026%2F17", headers=creditor.headers
    )
    assert found.status_code == 200, found.text
    assert found.json() == by_id.json()
    missing = await api.get("/api/cases/by-creditor-reference/INV-0", headers=creditor.headers)
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")


async def test_a_reference_named_like_a_case_subresource_is_still_a_reference(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    case_id = await add_case(sessions, creditor, reference="history")
    found = await api.get("/api/cases/by-creditor-reference/history", headers=creditor.headers)
    assert (found.status_code, found.json()["caseId"]) == (200, str(case_id))


async def test_another_organisation_gets_404_for_a_reference_it_does_not_see(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    case_id = await add_case(sessions, creditor, reference="SECRET-1")
    number = await _number(sessions, case_id)
    for kind in (OrgKind.CREDITOR, OrgKind.PARTNER):
        other = await make_actor(sessions, kind)
        for url in (
            "/api/cases/by-creditor-reference/SECRET-1",
            f"/api/cases/case-reference/{number}",
        ):
            answer = await api.get(url, headers=other.headers)
            assert (answer.status_code, answer.json()["code"]) == (404, "not_found"), url


async def test_case_reference_finds_the_case_by_its_number_in_any_letter_case(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    case_id = await add_case(sessions, creditor, partner=partner)
    number = await _number(sessions, case_id)
    for reader in (creditor, partner, ops):
        for asked in (number, number.lower()):
            found = await api.get(f"/api/cases/case-reference/{asked}", headers=reader.headers)
            assert found.status_code == 200, found.text
            assert (found.json()["caseId"], found.json()["caseNumber"]) == (str(case_id), number)
    missing = await api.get("/api/cases/case-reference/CL-1999-000000", headers=ops.headers)
    assert missing.status_code == 404


async def test_a_reference_two_creditors_share_is_409_for_whoever_sees_both(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor, ops: Actor
) -> None:
    other = await make_actor(sessions, OrgKind.CREDITOR)
    mine = await add_case(sessions, creditor, reference="SHARED-7")
    await add_case(sessions, other, reference="SHARED-7")
    own = await api.get("/api/cases/by-creditor-reference/SHARED-7", headers=creditor.headers)
    assert (own.status_code, own.json()["caseId"]) == (200, str(mine))
    both = await api.get("/api/cases/by-creditor-reference/SHARED-7", headers=ops.headers)
    assert (both.status_code, both.json()["code"]) == (409, "ambiguous_reference")
