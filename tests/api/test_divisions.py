"""A creditor's divisions (Debitura's ``DivisionsApi``) and the division a case names: CRUD and
archive, who sees what, deletion refused while a case names the division, ``creditorDivisionId``
on a new case and on its answers, and the ``DivisionIds`` filter of the case list."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from debitura_debt_collection import ApiClient, Configuration, DivisionsApi
from debitura_debt_collection.models import (
    DebituraWebExternalApiContractsV1CasesInvoiceDto as InvoiceDto,
)
from debitura_debt_collection.models import (
    DebituraWebExternalApiContractsV1DivisionsCreateDivisionRequestDto as CreateDivision,
)
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.cases import CaseSubmission
from domain.enums import OrgKind
from store.models import Case, Division
from tests.api.test_debitura_sdk import _in_thread
from tests.support import Actor, case_body, make_actor

SALES = {
    "companyName": "Acme Sales ApS",
    "registrationNumber": "DK12345678",
    "address": "Vestergade 12",
    "zipCode": "8000",
    "state": None,
    "city": "Aarhus",
    "countryCode": "dk",
    "officeEmail": "sales@acme.example",
    "officePhone": "+45 12 34 56 78",
}


async def create_division(
    api: httpx.AsyncClient, creditor: Actor, **overrides: Any
) -> dict[str, Any]:
    response = await api.post(
        "/api/divisions", json={**SALES, **overrides}, headers=creditor.headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def listed(api: httpx.AsyncClient, actor: Actor, **params: Any) -> list[str]:
    response = await api.get("/api/divisions", params=params, headers=actor.headers)
    assert response.status_code == 200, response.text
    return [d["id"] for d in response.json()["divisions"]]


async def case_ids(api: httpx.AsyncClient, actor: Actor, params: Any) -> list[str]:
    response = await api.get("/api/cases", params=params, headers=actor.headers)
    assert response.status_code == 200, response.text
    return [c["caseId"] for c in response.json()["cases"]]


async def test_a_creditor_creates_reads_lists_replaces_and_archives_its_divisions(
    api: httpx.AsyncClient, creditor: Actor
) -> None:
    sales = await create_division(api, creditor)
    # Debitura's DivisionDto, the country by its ISO code and name.
    assert sales.keys() == {
        "id",
        "companyName",
        "registrationNumber",
        "address",
        "zipCode",
        "state",
        "city",
        "country",
        "officeEmail",
        "officePhone",
        "isArchived",
        "createdUtc",
        "updatedUtc",
    }
    assert sales["country"] == {"id": None, "name": "Denmark", "alpha2": "DK"}
    assert (sales["companyName"], sales["isArchived"]) == ("Acme Sales ApS", False)
    assert sales["createdUtc"] == sales["updatedUtc"]
    got = await api.get(f"/api/divisions/{sales['id']}", headers=creditor.headers)
    assert (got.status_code, got.json()) == (200, sales)

    legal = await create_division(api, creditor, companyName="Acme Legal", countryCode="SE")
    assert await listed(api, creditor) == [sales["id"], legal["id"]]
    body = (
        await api.get("/api/divisions", params={"pageSize": 1}, headers=creditor.headers)
    ).json()
    assert body["page"] == {
        "totalResults": 2,
        "pageSize": 1,
        "currentPage": 1,
        "responseCount": 1,
        "totalPages": 2,
    }

    # PUT replaces every field: those left out are cleared.
    replaced = await api.put(
        f"/api/divisions/{legal['id']}",
        json={"companyName": "Acme Legal AB", "city": "Malmö", "countryCode": "SE"},
        headers=creditor.headers,
    )
    assert replaced.status_code == 200, replaced.text
    legal = replaced.json()
    assert (legal["companyName"], legal["city"], legal["registrationNumber"]) == (
        "Acme Legal AB",
        "Malmö",
        None,
    )
    assert legal["updatedUtc"] > legal["createdUtc"]

    archived = await api.post(f"/api/divisions/{legal['id']}/archive", headers=creditor.headers)
    assert archived.status_code == 200, archived.text
    assert archived.json()["isArchived"] is True
    again = await api.post(f"/api/divisions/{legal['id']}:archive", headers=creditor.headers)
    assert (again.status_code, again.json()) == (200, archived.json())  # no change
    # Archived divisions are listed only when asked for.
    assert await listed(api, creditor) == [sales["id"]]
    assert await listed(api, creditor, includeArchived="true") == [sales["id"], legal["id"]]


async def test_a_division_body_is_checked_field_by_field_and_a_bad_one_changes_nothing(
    api: httpx.AsyncClient, creditor: Actor
) -> None:
    for overrides, field in (
        ({"countryCode": "XX"}, "countryCode"),
        ({"companyName": ""}, "companyName"),
        ({"city": None}, "city"),
        ({"officeEmail": "not an address"}, "officeEmail"),
        ({"zipCode": "1" * 51}, "zipCode"),
        ({"isArchived": True}, "isArchived"),  # not a field of the request
    ):
        refused = await api.post(
            "/api/divisions", json={**SALES, **overrides}, headers=creditor.headers
        )
        assert refused.status_code == 422, (overrides, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in refused.json()["errors"]] == [field], refused.json()
    assert await listed(api, creditor, includeArchived="true") == []


async def test_a_retried_create_with_its_idempotency_key_adds_one_division(
    api: httpx.AsyncClient, creditor: Actor
) -> None:
    headers = {**creditor.headers, "Idempotency-Key": f"division-{uuid.uuid4()}"}
    first = await api.post("/api/divisions", json=SALES, headers=headers)
    second = await api.post("/api/divisions", json=SALES, headers=headers)
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json() == first.json()
    assert await listed(api, creditor) == [first.json()["id"]]


async def test_another_creditors_division_is_invisible_partners_get_403_and_ops_read_any(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    mine = await create_division(api, creditor)
    rival = await make_actor(sessions, OrgKind.CREDITOR)
    theirs = await create_division(api, rival, companyName="Rival Collections")

    assert await listed(api, creditor) == [mine["id"]]
    path = f"/api/divisions/{theirs['id']}"
    for method, url, body in (
        ("GET", path, None),
        ("PUT", path, SALES),
        ("POST", f"{path}/archive", None),
        ("DELETE", path, None),
    ):
        answer = await api.request(method, url, json=body, headers=creditor.headers)
        assert (answer.status_code, answer.json()["code"]) == (404, "not_found"), (method, url)
    unchanged = await api.get(path, headers=rival.headers)
    assert unchanged.json() == theirs

    # Partners have no divisions and read none; ops read every creditor's, change none.
    for method, url, body in (
        ("GET", "/api/divisions", None),
        ("POST", "/api/divisions", SALES),
        ("GET", path, None),
        ("PUT", path, SALES),
        ("POST", f"{path}/archive", None),
        ("DELETE", path, None),
    ):
        answer = await api.request(method, url, json=body, headers=partner.headers)
        assert (answer.status_code, answer.json()["code"]) == (403, "forbidden"), (method, url)
    assert set(await listed(api, ops)) == {mine["id"], theirs["id"]}
    assert (await api.get(path, headers=ops.headers)).json() == theirs
    for method, url, body in (
        ("POST", "/api/divisions", SALES),
        ("PUT", path, SALES),
        ("DELETE", path, None),
    ):
        answer = await api.request(method, url, json=body, headers=ops.headers)
        assert answer.status_code == 403, (method, url)
    assert (await api.get(path, headers=rival.headers)).json() == theirs


async def test_a_case_names_one_of_its_creditors_active_divisions_and_shows_it(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    ops: Actor,
) -> None:
    sales = await create_division(api, creditor)
    created = await api.post(
        "/api/cases", json=case_body(creditorDivisionId=sales["id"]), headers=creditor.headers
    )
    assert created.status_code == 201, created.text
    case = created.json()
    # Debitura's InvoiceDto: creditorDivisionId, and creditor.division {id, name}.
    assert case["creditorDivisionId"] == sales["id"]
    assert case["creditor"] == {
        "id": str(creditor.org_id),
        "division": {"id": sales["id"], "name": "Acme Sales ApS"},
    }
    invoice = InvoiceDto.from_json(created.text)
    assert invoice is not None and invoice.creditor is not None
    assert invoice.creditor_division_id == sales["id"]
    assert invoice.creditor.division is not None
    assert invoice.creditor.division.name == "Acme Sales ApS"
    plain = await api.post("/api/cases", json=case_body(), headers=creditor.headers)
    assert plain.json()["creditorDivisionId"] is None
    assert plain.json()["creditor"] == {"id": str(creditor.org_id), "division": None}

    # A renamed division is shown by its new name; a correction keeps the division.
    renamed = await api.put(
        f"/api/divisions/{sales['id']}",
        json={**SALES, "companyName": "Acme Nordic Sales"},
        headers=creditor.headers,
    )
    assert renamed.status_code == 200, renamed.text
    corrected = await api.patch(
        f"/api/cases/{case['caseId']}", json={"amountToRecover": "99.00"}, headers=creditor.headers
    )
    assert corrected.status_code == 200, corrected.text
    assert corrected.json()["creditorDivisionId"] == sales["id"]
    assert corrected.json()["creditor"]["division"]["name"] == "Acme Nordic Sales"
    for actor in (creditor, ops):
        got = await api.get(f"/api/cases/{case['caseId']}", headers=actor.headers)
        assert got.json()["creditor"]["division"] == {
            "id": sales["id"],
            "name": "Acme Nordic Sales",
        }
    async with sessions() as session:
        stored = await session.scalar(
            select(Case.creditor_division_id).where(Case.id == uuid.UUID(case["caseId"]))
        )
    assert str(stored) == sales["id"]


async def test_a_case_naming_no_active_division_of_its_creditor_is_422_and_changes_nothing(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
) -> None:
    rival = await make_actor(sessions, OrgKind.CREDITOR)
    theirs = await create_division(api, rival)
    archived = await create_division(api, creditor, companyName="Old branch")
    await api.post(f"/api/divisions/{archived['id']}/archive", headers=creditor.headers)
    for division_id in (theirs["id"], archived["id"], str(uuid.uuid4())):
        body = case_body(creditorDivisionId=division_id)
        refused = await api.post("/api/cases", json=body, headers=creditor.headers)
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"] == [
            {
                "field": "creditorDivisionId",
                "message": "is not an active division of your organisation",
            }
        ]
        # The reference is still free: nothing was reserved for the refused case.
        retry = await api.post(
            "/api/cases", json={**body, "creditorDivisionId": None}, headers=creditor.headers
        )
        assert retry.status_code == 201, retry.text
    async with sessions() as session:
        used = set(await session.scalars(select(Division.id).where(Division.used.is_(True))))
    assert used == set()


async def test_a_division_is_deleted_only_while_no_case_names_it(
    api: httpx.AsyncClient, creditor: Actor
) -> None:
    unused = await create_division(api, creditor, companyName="Never used")
    deleted = await api.delete(f"/api/divisions/{unused['id']}", headers=creditor.headers)
    assert deleted.status_code == 204, deleted.text
    gone = await api.get(f"/api/divisions/{unused['id']}", headers=creditor.headers)
    assert gone.status_code == 404
    assert (
        await api.delete(f"/api/divisions/{unused['id']}", headers=creditor.headers)
    ).status_code == 404

    used = await create_division(api, creditor)
    body = case_body(creditorDivisionId=used["id"])
    case = await api.post("/api/cases", json=body, headers=creditor.headers)
    assert case.status_code == 201, case.text
    # A refused submission for it (a used reference) does not count.
    duplicate = await api.post(
        "/api/cases", json={**body, "amountToRecover": "1.00"}, headers=creditor.headers
    )
    assert duplicate.json()["code"] == "duplicate_creditor_reference"
    refused = await api.delete(f"/api/divisions/{used['id']}", headers=creditor.headers)
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "division_in_use"
    # Archived, it stays on the case and may still not be deleted.
    await api.post(f"/api/divisions/{used['id']}/archive", headers=creditor.headers)
    still = await api.delete(f"/api/divisions/{used['id']}", headers=creditor.headers)
    assert (still.status_code, still.json()["code"]) == (409, "division_in_use")
    got = await api.get(f"/api/cases/{case.json()['caseId']}", headers=creditor.headers)
    assert got.json()["creditor"]["division"] == {"id": used["id"], "name": "Acme Sales ApS"}


async def test_the_case_list_and_summary_filter_by_division_ids(
    api: httpx.AsyncClient, creditor: Actor, ops: Actor
) -> None:
    sales = await create_division(api, creditor)
    legal = await create_division(api, creditor, companyName="Acme Legal")
    made = {}
    for name, division in (("sales", sales), ("legal", legal), ("none", None)):
        extra = {"creditorDivisionId": division["id"]} if division else {}
        response = await api.post("/api/cases", json=case_body(**extra), headers=creditor.headers)
        assert response.status_code == 201, response.text
        made[name] = response.json()["caseId"]

    for actor in (creditor, ops):
        # Debitura's SDK spelling, the camelCase one, repeated or comma-separated.
        assert await case_ids(api, actor, {"DivisionIds": sales["id"]}) == [made["sales"]]
        assert await case_ids(api, actor, {"divisionIds": legal["id"]}) == [made["legal"]]
        both = [("DivisionIds", sales["id"]), ("DivisionIds", legal["id"])]
        assert await case_ids(api, actor, both) == [made["legal"], made["sales"]]
        joined = f"{sales['id']},{legal['id']}"
        assert await case_ids(api, actor, {"divisionIds": joined}) == [made["legal"], made["sales"]]
    assert await case_ids(api, creditor, {"DivisionIds": str(uuid.uuid4())}) == []
    summary = await api.get(
        "/api/cases/analytics/status-summary",
        params={"DivisionIds": sales["id"]},
        headers=creditor.headers,
    )
    assert summary.json()["totalCases"] == 1
    bad = await api.get("/api/cases", params={"DivisionIds": "sales"}, headers=creditor.headers)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "divisionIds[0]"


async def test_debituras_sdk_creates_and_lists_divisions(served: str, creditor: Actor) -> None:
    divisions = DivisionsApi(
        ApiClient(Configuration(host=f"{served}/api", api_key={"ApiKey": creditor.key}))
    )
    created = await _in_thread(
        divisions.divisions_post,
        None,
        CreateDivision(
            company_name="Acme Sales ApS", city="Aarhus", country_code="DK", zip_code="8000"
        ),
    )
    assert created is not None and created.id is not None
    assert (created.company_name, created.city, created.zip_code, created.is_archived) == (
        "Acme Sales ApS",
        "Aarhus",
        "8000",
        False,
    )
    assert created.country is not None and created.country.alpha2 == "DK"
    other = await _in_thread(
        divisions.divisions_post,
        None,
        CreateDivision(company_name="Acme Legal", city="Malmö", country_code="SE"),
    )
    assert other is not None
    listed = await _in_thread(divisions.divisions_get, page=1, page_size=10)
    assert listed.page.total_results == 2
    assert [d.company_name for d in listed.divisions or []] == ["Acme Sales ApS", "Acme Legal"]
    got = await _in_thread(divisions.divisions_id_get, created.id)
    assert got.company_name == "Acme Sales ApS"
    archived = await _in_thread(divisions.divisions_id_archive_post, other.id)
    assert archived.is_archived is True
    active = await _in_thread(divisions.divisions_get, include_archived=False)
    assert [d.id for d in active.divisions or []] == [created.id]
    every = await _in_thread(divisions.divisions_get, include_archived=True)
    assert [d.id for d in every.divisions or []] == [created.id, other.id]


def test_a_submission_without_a_division_is_written_as_before_divisions_existed() -> None:
    """Its workflow input, reservation hash and Idempotency-Key fingerprint carry no
    ``creditorDivisionId``: a worker of the release before reads it (its models forbid unknown
    fields), and a retry across the upgrade finds its reservation."""
    plain = CaseSubmission.model_validate(case_body())
    assert "creditorDivisionId" not in plain.model_dump(mode="json")
    assert "creditorDivisionId" not in plain.model_dump_json()
    division_id = uuid.uuid4()
    named = CaseSubmission.model_validate(case_body(creditorDivisionId=str(division_id)))
    assert named.model_dump(mode="json")["creditorDivisionId"] == str(division_id)
