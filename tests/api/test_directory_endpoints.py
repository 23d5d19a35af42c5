"""``GET /api/me`` and ``GET /api/users``: who the caller is, and its organisation's team."""

from __future__ import annotations

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.enums import OrgKind
from store.db import transaction
from store.models import User
from tests.support import Actor, make_actor


async def test_me_names_the_callers_organisation_and_user(
    api: httpx.AsyncClient, creditor: Actor, partner: Actor
) -> None:
    answer = await api.get("/api/me", headers=creditor.headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "id": str(creditor.org_id),
        "companyName": creditor.principal.org_name,
        "country": "DK",
        "role": "creditor",
        "timezone": "Europe/Copenhagen",
        "user": {
            "id": str(creditor.principal.user_id),
            "name": None,
            "email": creditor.principal.user_email,
        },
    }
    other = (await api.get("/api/me", headers=partner.headers)).json()
    assert (other["id"], other["role"]) == (str(partner.org_id), "partner")


async def test_me_without_a_key_is_401(api: httpx.AsyncClient) -> None:
    answer = await api.get("/api/me")
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"


async def test_users_lists_only_the_callers_active_team_in_pages(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    colleague = await make_actor(sessions, OrgKind.CREDITOR, org_id=creditor.org_id)
    gone = await make_actor(sessions, OrgKind.CREDITOR, org_id=creditor.org_id)
    async with transaction(sessions) as session:
        await session.execute(
            update(User).where(User.id == gone.principal.user_id).values(active=False)
        )
    stranger = await make_actor(sessions, OrgKind.CREDITOR)

    answer = await api.get("/api/users", headers=creditor.headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["page"] == {
        "totalResults": 2,
        "pageSize": 10,
        "currentPage": 1,
        "responseCount": 2,
        "totalPages": 1,
    }
    assert body["users"] == [
        {"id": str(a.principal.user_id), "name": None, "email": a.principal.user_email}
        for a in (creditor, colleague)
    ]
    second = (
        await api.get("/api/users", params={"Page": 2, "PageSize": 1}, headers=creditor.headers)
    ).json()
    assert [u["id"] for u in second["users"]] == [str(colleague.principal.user_id)]
    assert second["page"]["totalPages"] == 2

    theirs = (await api.get("/api/users", headers=stranger.headers)).json()
    assert [u["id"] for u in theirs["users"]] == [str(stranger.principal.user_id)]


async def test_users_refuses_an_unknown_query_parameter(
    api: httpx.AsyncClient, creditor: Actor
) -> None:
    answer = await api.get("/api/users", params={"role": "admin"}, headers=creditor.headers)
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "role"


async def test_a_user_sets_their_own_time_zone_and_a_bad_one_is_refused_unchanged(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], partner: Actor
) -> None:
    answer = await api.patch(
        "/api/users/me", json={"timezone": "America/New_York"}, headers=partner.headers
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "id": str(partner.principal.user_id),
        "timezone": "America/New_York",
        "effectiveTimezone": "America/New_York",
    }
    refused = await api.patch(
        "/api/users/me", json={"timezone": "Mars/Olympus_Mons"}, headers=partner.headers
    )
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "validation_failed"
    async with sessions() as session:
        user = await session.get(User, partner.principal.user_id)
        assert user is not None and user.timezone == "America/New_York"
    reset = await api.patch("/api/users/me", json={"timezone": None}, headers=partner.headers)
    assert reset.json()["effectiveTimezone"] == "Europe/Copenhagen"
    assert reset.json()["timezone"] is None
