"""POST/GET /api/cases through the real app, a real worker and the Temporal dev server."""

from __future__ import annotations

import datetime as dt

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from domain.enums import CaseStatus, OrgKind
from domain.ids import case_workflow_id
from store.models import Case, CaseHistory
from tests.support import Actor, case_body, eventually_listed, make_actor


async def test_creditor_creates_case_and_reads_it_back(
    api: httpx.AsyncClient, creditor: Actor
) -> None:
    body = case_body()
    created = await api.post("/api/cases", json=body, headers=creditor.headers)
    assert created.status_code == 201, created.text
    case = created.json()
    assert created.headers["Location"] == f"/api/cases/{case['caseId']}"
    assert case["status"] == "Created"
    assert case["lifecycle"] == "Pending Verification"
    assert case["caseNumber"].startswith("CL-")
    assert case["creditorReference"] == body["creditorReference"]
    assert case["amountToRecover"] == "12500.00"
    assert case["debtor"]["countryAlpha2"] == "DK"
    assert case["daysInCurrentStatus"] == 0

    fetched = await api.get(f"/api/cases/{case['caseId']}", headers=creditor.headers)
    assert fetched.status_code == 200
    assert fetched.json() == case


async def test_new_case_history_starts_with_created(
    api: httpx.AsyncClient, creditor: Actor
) -> None:
    case = (await api.post("/api/cases", json=case_body(), headers=creditor.headers)).json()
    history = (
        await api.get(f"/api/cases/{case['caseId']}/history", headers=creditor.headers)
    ).json()
    assert [
        (h["status"], h["subStatus"], h["changedBy"], h["note"]) for h in history["history"]
    ] == [
        ("Created", None, "API", "Case created via API"),
        ("Created", "Pending contract signing", "System", "Waiting: Pending contract signing"),
    ]


async def test_case_workflow_is_findable_by_status_and_creditor(
    api: httpx.AsyncClient, creditor: Actor, dev_env: WorkflowEnvironment
) -> None:
    case = (await api.post("/api/cases", json=case_body(), headers=creditor.headers)).json()
    query = f"CaseStatus = 'Created' AND CreditorId = '{creditor.org_id}'"
    ids = await eventually_listed(dev_env, query)
    assert ids == [case_workflow_id(case["caseId"])]
    description = await dev_env.client.get_workflow_handle(ids[0]).describe()
    summary = await description.static_summary()
    assert summary is not None
    assert case["caseNumber"] in summary


async def test_request_without_key_is_401_problem(api: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"XApiKey": "nope"}):
        response = await api.post("/api/cases", json=case_body(), headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "unauthenticated"


async def test_xapikey_header_authenticates(api: httpx.AsyncClient, creditor: Actor) -> None:
    response = await api.get("/api/cases", headers={"XApiKey": creditor.key})
    assert response.status_code == 200


async def test_partner_creating_case_is_403(api: httpx.AsyncClient, partner: Actor) -> None:
    response = await api.post("/api/cases", json=case_body(), headers=partner.headers)
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "forbidden"


async def test_other_creditor_gets_404_for_case(
    api: httpx.AsyncClient, creditor: Actor, sessions: async_sessionmaker[AsyncSession]
) -> None:
    case = (await api.post("/api/cases", json=case_body(), headers=creditor.headers)).json()
    other = await make_actor(sessions, OrgKind.CREDITOR)
    for path in (f"/api/cases/{case['caseId']}", f"/api/cases/{case['caseId']}/history"):
        response = await api.get(path, headers=other.headers)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "not_found"
    listed = (await api.get("/api/cases", headers=other.headers)).json()
    assert listed["cases"] == []


async def test_invalid_case_body_is_422_naming_fields(
    api: httpx.AsyncClient, creditor: Actor, sessions: async_sessionmaker[AsyncSession]
) -> None:
    body = case_body(currencyCode="XYZ", amountToRecover="-5")
    body["debtor"] = {**body["debtor"], "countryAlpha2": "QQ"}  # type: ignore[dict-item]
    response = await api.post("/api/cases", json=body, headers=creditor.headers)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "validation_failed"
    fields = {e["field"] for e in problem["errors"]}
    assert fields == {"currencyCode", "amountToRecover", "debtor.countryAlpha2"}
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Case)) == 0


async def test_due_date_before_date_and_future_date_are_422(
    api: httpx.AsyncClient, creditor: Actor
) -> None:
    response = await api.post(
        "/api/cases",
        json=case_body(date="2026-09-10", dueDate="2026-09-01"),
        headers=creditor.headers,
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "dueDate", "message": "must not be before date"}]
    soon = dt.date.today() + dt.timedelta(days=3)  # tomorrow or later in every time zone
    response = await api.post(
        "/api/cases",
        json=case_body(date=soon.isoformat(), dueDate=(soon + dt.timedelta(days=30)).isoformat()),
        headers=creditor.headers,
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "date", "message": "must not be in the future"}]


async def test_same_idempotency_key_twice_creates_one_case(
    api: httpx.AsyncClient, creditor: Actor, sessions: async_sessionmaker[AsyncSession]
) -> None:
    body = case_body()
    headers = {**creditor.headers, "Idempotency-Key": "create-once-1"}
    first = await api.post("/api/cases", json=body, headers=headers)
    second = await api.post("/api/cases", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers.get("Idempotent-Replayed") == "true"
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Case)) == 1
        assert await session.scalar(select(func.count(CaseHistory.case_id.distinct()))) == 1


async def test_same_idempotency_key_with_other_body_is_422(
    api: httpx.AsyncClient, creditor: Actor, sessions: async_sessionmaker[AsyncSession]
) -> None:
    headers = {**creditor.headers, "Idempotency-Key": "create-once-2"}
    assert (await api.post("/api/cases", json=case_body(), headers=headers)).status_code == 201
    response = await api.post("/api/cases", json=case_body(), headers=headers)
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Case)) == 1


async def test_resubmitting_same_case_without_key_returns_same_case(
    api: httpx.AsyncClient, creditor: Actor
) -> None:
    body = case_body()
    first = (await api.post("/api/cases", json=body, headers=creditor.headers)).json()
    again = await api.post("/api/cases", json=body, headers=creditor.headers)
    assert again.status_code == 201
    assert again.json()["caseId"] == first["caseId"]


async def test_reused_creditor_reference_with_other_data_is_422(
    api: httpx.AsyncClient, creditor: Actor
) -> None:
    body = case_body()
    first = (await api.post("/api/cases", json=body, headers=creditor.headers)).json()
    response = await api.post(
        "/api/cases", json={**body, "amountToRecover": "1.00"}, headers=creditor.headers
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["code"] == "duplicate_creditor_reference"
    assert problem["caseId"] == first["caseId"]
    assert problem["errors"][0]["field"] == "creditorReference"


async def test_same_reference_is_fine_for_two_creditors(
    api: httpx.AsyncClient, creditor: Actor, sessions: async_sessionmaker[AsyncSession]
) -> None:
    other = await make_actor(sessions, OrgKind.CREDITOR)
    body = case_body(creditorReference="INV-1")
    a = await api.post("/api/cases", json=body, headers=creditor.headers)
    b = await api.post("/api/cases", json=body, headers=other.headers)
    assert a.status_code == b.status_code == 201
    assert a.json()["caseId"] != b.json()["caseId"]


async def test_list_cases_paginates_with_page_envelope(
    api: httpx.AsyncClient, creditor: Actor
) -> None:
    for _ in range(3):
        assert (
            await api.post("/api/cases", json=case_body(), headers=creditor.headers)
        ).status_code == 201
    page = (await api.get("/api/cases?pageSize=2&page=2", headers=creditor.headers)).json()
    assert page["page"] == {
        "totalResults": 3,
        "pageSize": 2,
        "currentPage": 2,
        "responseCount": 1,
        "totalPages": 2,
    }
    pascal = (await api.get("/api/cases?PageSize=2&Page=1", headers=creditor.headers)).json()
    assert pascal["page"]["responseCount"] == 2
    too_big = await api.get("/api/cases?pageSize=101", headers=creditor.headers)
    assert too_big.status_code == 422
    assert too_big.json()["errors"][0]["field"] == "pageSize"


async def test_list_filters_by_status_and_lifecycle(
    api: httpx.AsyncClient, creditor: Actor
) -> None:
    assert (
        await api.post("/api/cases", json=case_body(), headers=creditor.headers)
    ).status_code == 201
    created = (await api.get("/api/cases?status=Created", headers=creditor.headers)).json()
    assert created["page"]["totalResults"] == 1
    active = (await api.get("/api/cases?status=In Collection", headers=creditor.headers)).json()
    assert active["page"]["totalResults"] == 0
    pending = (
        await api.get("/api/cases?lifecycle=Pending Verification", headers=creditor.headers)
    ).json()
    assert pending["page"]["totalResults"] == 1
    bad = await api.get("/api/cases?status=Bogus", headers=creditor.headers)
    assert bad.status_code == 422


async def test_health_reports_temporal_and_database(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "temporal": "ok", "database": "ok"}


async def test_status_summary_counts_your_cases_and_their_outcomes(
    api: httpx.AsyncClient, creditor: Actor, sessions: async_sessionmaker[AsyncSession]
) -> None:
    other = await make_actor(sessions, OrgKind.CREDITOR)
    ids = []
    for _ in range(2):
        created = await api.post("/api/cases", json=case_body(), headers=creditor.headers)
        assert created.status_code == 201, created.text
        ids.append(created.json()["caseId"])
    withdrawn = await api.post(f"/api/cases/{ids[0]}/withdraw", json={}, headers=creditor.headers)
    assert withdrawn.status_code == 200, withdrawn.text
    assert (
        await api.post("/api/cases", json=case_body(), headers=other.headers)
    ).status_code == 201

    url = "/api/cases/analytics/status-summary"
    summary = (await api.get(url, headers=creditor.headers)).json()
    counts = summary["statusBreakdown"]
    assert (summary["totalCases"], counts["Created"], counts["Closed"], counts["Resolved"]) == (
        2,
        1,
        1,
        0,
    )
    assert set(counts) == {s.value for s in CaseStatus}, "every status, zero included"
    lifecycles = summary["lifecycleBreakdown"]
    assert (lifecycles["Pending Verification"], lifecycles["Closed"]) == (1, 1)
    # One finished case, withdrawn: nothing recovered.
    assert (summary["finishedCases"], summary["successRate"]) == (1, 0.0)
    assert 0 <= summary["averageResolutionTime"] < 1
    # The list's filters apply, and another creditor's cases never count.
    closed = (await api.get(f"{url}?status=Created", headers=creditor.headers)).json()
    assert (closed["totalCases"], closed["finishedCases"], closed["successRate"]) == (1, 0, None)
    assert (await api.get(url, headers=other.headers)).json()["totalCases"] == 1
    assert (await api.get(url)).status_code == 401
