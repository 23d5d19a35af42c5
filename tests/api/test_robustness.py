"""Edge cases that must not lose work, leak across organisations or answer 500."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.app import create_app
from settings import Settings
from store.db import transaction
from store.models import CaseRegistration
from tests.api.test_tasks import assign, bank_account, new_case, ready_case, sign
from tests.support import Actor, case_body


async def test_same_idempotency_key_in_two_organisations_applies_both_actions(
    api: httpx.AsyncClient, creditor: Actor, partner: Actor, ops: Actor
) -> None:
    case = await ready_case(api, creditor)
    key = {"Idempotency-Key": "shared-key-1"}
    account_id = await bank_account(api, creditor)
    moved = await api.put(
        f"/api/cases/{case['caseId']}/bank-account",
        json={"bankAccountId": account_id},
        headers={**creditor.headers, **key},
    )
    assert moved.status_code == 200, moved.text
    assigned = await assign_with_headers(api, case["caseId"], partner, {**ops.headers, **key})
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["status"] == "Assigned", "ops' action must not be taken for a replay"


async def assign_with_headers(
    api: httpx.AsyncClient, case_id: str, partner: Actor, headers: dict[str, str]
) -> httpx.Response:
    return await api.post(
        f"/api/cases/{case_id}/assign", json={"partnerId": str(partner.org_id)}, headers=headers
    )


async def test_timestamps_without_offset_are_read_as_utc(
    api: httpx.AsyncClient, creditor: Actor
) -> None:
    await new_case(api, creditor)
    for path in (
        "/api/cases?dateFrom=2020-01-01&lastModifiedAfter=2020-01-01T00:00:00",
        "/api/tasks?deadlineFrom=2020-01-01&deadlineTo=2099-01-01T00:00:00",
    ):
        response = await api.get(path, headers=creditor.headers)
        assert response.status_code == 200, response.text
    cases = (await api.get("/api/cases?dateFrom=2020-01-01", headers=creditor.headers)).json()
    assert cases["page"]["totalResults"] == 1


async def test_acting_on_a_solved_task_is_409(
    api: httpx.AsyncClient, creditor: Actor, partner: Actor, ops: Actor
) -> None:
    case = await ready_case(api, creditor)
    await assign(api, ops, case["caseId"], partner)
    [review] = (await api.get(f"/api/cases/{case['caseId']}/tasks", headers=partner.headers)).json()
    assert (
        await api.post(f"/api/cases/{case['caseId']}/accept", headers=partner.headers)
    ).status_code == 200
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat()
    response = await api.post(
        f"/api/tasks/{review['id']}/postpone",
        json={"deadline": later, "reason": "x"},
        headers=partner.headers,
    )
    assert response.status_code == 409
    assert response.json()["code"] == "task_not_open"


async def test_reference_reserved_by_a_submission_that_never_started_can_be_reused(
    api: httpx.AsyncClient, creditor: Actor, sessions: async_sessionmaker[AsyncSession]
) -> None:
    # As if an earlier POST reserved the reference and then failed before its workflow started.
    async with transaction(sessions) as session:
        session.add(
            CaseRegistration(
                case_id=uuid.uuid4(),
                creditor_id=creditor.org_id,
                creditor_reference="INV-ABANDONED",
                request_hash="0" * 64,
                created_at=dt.datetime.now(dt.UTC),
            )
        )
    response = await api.post(
        "/api/cases", json=case_body(creditorReference="INV-ABANDONED"), headers=creditor.headers
    )
    assert response.status_code == 201, response.text
    again = await api.post(
        "/api/cases",
        json=case_body(creditorReference="INV-ABANDONED", amountToRecover="1.00"),
        headers=creditor.headers,
    )
    assert again.status_code == 422
    assert again.json()["caseId"] == response.json()["caseId"]


async def test_correcting_a_case_checks_the_same_rules_as_creating_it(
    api: httpx.AsyncClient, creditor: Actor
) -> None:
    case = await new_case(api, creditor)
    soon = dt.date.today() + dt.timedelta(days=3)  # tomorrow or later in every time zone
    future = await api.patch(
        f"/api/cases/{case['caseId']}",
        json={"date": soon.isoformat(), "dueDate": (soon + dt.timedelta(days=30)).isoformat()},
        headers=creditor.headers,
    )
    assert future.status_code == 422
    assert future.json()["errors"] == [{"field": "date", "message": "must not be in the future"}]
    bad = await api.patch(
        f"/api/cases/{case['caseId']}", json={"currencyCode": "XYZ"}, headers=creditor.headers
    )
    assert bad.status_code == 422
    fixed = await api.patch(
        f"/api/cases/{case['caseId']}",
        json={"claimDescription": "Invoice 42, corrected", "debtor": {"city": "Odense"}},
        headers=creditor.headers,
    )
    assert fixed.status_code == 200, fixed.text
    body: dict[str, Any] = fixed.json()
    assert body["claimDescription"] == "Invoice 42, corrected"
    assert body["debtor"]["city"] == "Odense"
    assert body["debtor"]["name"] == case["debtor"]["name"]
    await sign(api, creditor)


async def test_writes_answer_503_while_temporal_is_unreachable(
    settings: Settings, creditor: Actor
) -> None:
    offline = settings.model_copy(update={"temporal_address": "127.0.0.1:1"})
    app = create_app(offline)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            health = await client.get("/api/health")
            assert health.status_code == 503
            assert health.json()["temporal"] == "unavailable"
            created = await client.post("/api/cases", json=case_body(), headers=creditor.headers)
            assert created.status_code == 503
            assert created.json()["code"] == "temporal_unavailable"
            assert created.headers["Retry-After"] == "5"
