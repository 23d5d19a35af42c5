"""Drivers for portal tests: a user with a password, sign-in, forms with their CSRF token."""

from __future__ import annotations

import re

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from store.db import transaction
from store.models import User
from store.passwords import set_password
from tests.api.test_tasks import ready_case
from tests.support import Actor

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def with_password(
    sessions: async_sessionmaker[AsyncSession], actor: Actor, password: str = PASSWORD
) -> str:
    """Give ``actor`` a portal password; returns their e-mail."""
    async with transaction(sessions) as session:
        await set_password(session=session, user_id=actor.principal.user_id, password=password)
    async with sessions() as session:
        user = await session.get(User, actor.principal.user_id)
        assert user is not None
        return user.email


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


async def post_form(
    portal: httpx.AsyncClient, path: str, data: dict[str, str], *, page: str | None = None
) -> httpx.Response:
    """POST a form as the browser would after loading ``page`` (default: ``path``)."""
    form_page = await portal.get(page or path)
    return await portal.post(path, data={"csrf_token": csrf_of(form_page), **data})


async def sign_in(
    portal: httpx.AsyncClient, email: str, password: str = PASSWORD, next_path: str = ""
) -> httpx.Response:
    data = {"email": email, "password": password}
    if next_path:
        data["next"] = next_path
    return await post_form(portal, "/portal/sign-in", data)


async def signed_in(
    portal: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], actor: Actor
) -> None:
    """``actor`` signed in to ``portal`` (with a password set for it)."""
    assert (await sign_in(portal, await with_password(sessions, actor))).status_code == 303


async def in_collection(
    live_portal: httpx.AsyncClient, creditor: Actor, partner: Actor, ops: Actor
) -> str:
    """A case In Collection with ``partner``, made through the API; its id."""
    case = await ready_case(live_portal, creditor)
    case_id = str(case["caseId"])
    assigned = await live_portal.post(
        f"/api/cases/{case_id}/assign", json={"partnerId": str(partner.org_id)}, headers=ops.headers
    )
    assert assigned.status_code == 200, assigned.text
    accepted = await live_portal.post(f"/api/cases/{case_id}/accept", headers=partner.headers)
    assert accepted.status_code == 200, accepted.text
    return case_id
