"""``GET/PUT /api/me/notification-preferences``: each user reads and changes their own e-mail
categories only, and only those of their side (creditors, partners; ops users get none); an
unknown category, or one of the other side's, is a 422 problem and changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.app import create_app
from domain.enums import OrgKind
from settings import Settings
from store.models import NotificationPreference
from tests.support import Actor, make_actor

PATH = "/api/me/notification-preferences"
# What each side is offered, in this order (SPEC.md "Notifications").
CREDITORS = [
    "partner_messages",
    "contract_reminder",
    "bank_account_digest",
    "overdue_reminder",
    "deadline_escalation",
]
PARTNERS = ["daily_summary", "overdue_reminder", "deadline_escalation"]


@pytest.fixture
async def client(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[httpx.AsyncClient]:
    """The real app; these routes need no Temporal."""
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://caseloop.test"
        ) as http,
    ):
        yield http


async def enabled(client: httpx.AsyncClient, actor: Actor) -> dict[str, bool]:
    got = await client.get(PATH, headers=actor.headers)
    assert got.status_code == 200, got.text
    return {p["category"]: p["enabled"] for p in got.json()["preferences"]}


async def test_every_category_is_on_until_the_user_turns_it_off(
    client: httpx.AsyncClient, creditor: Actor
) -> None:
    got = await client.get(PATH, headers=creditor.headers)
    assert got.status_code == 200
    listed = got.json()["preferences"]
    assert [p["category"] for p in listed] == CREDITORS
    assert all(p["enabled"] is True for p in listed)
    assert set(listed[0]) == {"category", "label", "description", "enabled"}
    assert listed[0]["label"] == "Messages from collection partners"

    put = await client.put(
        PATH,
        json={"preferences": [{"category": "deadline_escalation", "enabled": False}]},
        headers=creditor.headers,
    )
    assert put.status_code == 200, put.text
    answered = {p["category"]: p["enabled"] for p in put.json()["preferences"]}
    assert answered == await enabled(client, creditor)
    assert [c for c, on in answered.items() if not on] == ["deadline_escalation"]

    on_again = await client.put(
        PATH,
        json={
            "preferences": [
                {"category": "deadline_escalation", "enabled": True},
                {"category": "overdue_reminder", "enabled": False},
            ]
        },
        headers=creditor.headers,
    )
    assert on_again.status_code == 200
    assert [c for c, on in (await enabled(client, creditor)).items() if not on] == [
        "overdue_reminder"
    ], "categories the body names change; the others keep their setting"

    twice = await client.put(
        PATH,
        json={
            "preferences": [
                {"category": "overdue_reminder", "enabled": True},
                {"category": "overdue_reminder", "enabled": False},
            ]
        },
        headers=creditor.headers,
    )
    assert twice.status_code == 200, "a category named twice takes its last entry"
    assert not (await enabled(client, creditor))["overdue_reminder"]


async def test_a_user_reads_and_changes_only_their_own_preferences(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    colleague = await make_actor(sessions, OrgKind.CREDITOR, org_id=creditor.org_id)
    off = {"preferences": [{"category": "partner_messages", "enabled": False}]}
    assert (await client.put(PATH, json=off, headers=creditor.headers)).status_code == 200

    assert all((await enabled(client, colleague)).values()), "the colleague's are their own"
    mine_off = {"preferences": [{"category": "contract_reminder", "enabled": False}]}
    assert (await client.put(PATH, json=mine_off, headers=colleague.headers)).status_code == 200
    assert [c for c, on in (await enabled(client, creditor)).items() if not on] == [
        "partner_messages"
    ]
    assert [c for c, on in (await enabled(client, colleague)).items() if not on] == [
        "contract_reminder"
    ]
    # A colleague replaying another user's Idempotency-Key gets a 422, not that user's answer.
    keyed = {**creditor.headers, "Idempotency-Key": "prefs-1"}
    assert (await client.put(PATH, json=off, headers=keyed)).status_code == 200
    reused = await client.put(
        PATH, json=off, headers={**colleague.headers, "Idempotency-Key": "prefs-1"}
    )
    assert reused.status_code == 422
    assert reused.json()["code"] == "idempotency_key_reused"
    assert [c for c, on in (await enabled(client, colleague)).items() if not on] == [
        "contract_reminder"
    ]


@pytest.mark.parametrize(
    "body",
    [
        {"preferences": [{"category": "newsletter", "enabled": False}]},
        {"preferences": [{"category": "daily_summary", "enabled": "sometimes"}]},
        {"preferences": [{"category": "daily_summary", "enabled": 0}]},
        {"preferences": []},
        {"dailySummary": False},
    ],
    ids=[
        "unknown category",
        "not a boolean",
        "a number for a boolean",
        "nothing",
        "another shape",
    ],
)
async def test_an_invalid_change_is_a_422_problem_and_changes_nothing(
    client: httpx.AsyncClient, creditor: Actor, body: object
) -> None:
    refused = await client.put(PATH, json=body, headers=creditor.headers)
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "validation_failed"
    assert all((await enabled(client, creditor)).values())


async def test_each_side_is_offered_only_the_categories_its_users_get(
    client: httpx.AsyncClient, creditor: Actor, partner: Actor, ops: Actor
) -> None:
    assert list(await enabled(client, creditor)) == CREDITORS
    assert list(await enabled(client, partner)) == PARTNERS
    assert list(await enabled(client, ops)) == [], "ops users get no e-mails"


@pytest.mark.parametrize(
    ("side", "category"),
    [
        ("partner", "partner_messages"),
        ("partner", "contract_reminder"),
        ("partner", "bank_account_digest"),
        ("creditor", "daily_summary"),
        ("ops", "overdue_reminder"),
    ],
)
async def test_a_category_of_the_other_side_is_a_422_problem_and_changes_nothing(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    side: str,
    category: str,
) -> None:
    actor = {"creditor": creditor, "partner": partner, "ops": ops}[side]
    body = {
        "preferences": [
            {"category": "overdue_reminder", "enabled": False},
            {"category": category, "enabled": False},
        ]
    }
    refused = await client.put(PATH, json=body, headers=actor.headers)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["code"] == "validation_failed"
    first_foreign = 0 if side == "ops" else 1  # ops users get no category at all
    assert [e["field"] for e in problem["errors"]] == [f"preferences[{first_foreign}].category"]
    async with sessions() as session:
        rows = (await session.scalars(select(NotificationPreference))).all()
    assert rows == [], "not even the valid entry beside it is saved"


async def test_preferences_need_a_key(client: httpx.AsyncClient) -> None:
    for answer in (
        await client.get(PATH),
        await client.put(PATH, json={"preferences": []}),
    ):
        assert answer.status_code == 401
        assert answer.json()["code"] == "unauthenticated"
