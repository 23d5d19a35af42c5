"""The OpenAPI document itself: valid, no dangling ``$ref``, every operation's error answers
documented as problem+json, the bounds of the parameters as enforced, and the server's answers
consistent with it (405 ``Allow``, and what schemathesis found: numbers taken for dates, 5.0
refused as an integer, a 500 for files in a lead thread)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.app import create_app
from api.guard import UNGUARDED_PATHS
from api.openapi import CODES
from api.pagination import MAX_PAGE, MAX_PAGE_SIZE
from api.routes.case_work import ReviewEntry
from settings import Settings
from store.models import Attachment
from tests.api.test_chat import PDF, count, stored_files
from tests.api.test_tasks import new_case
from tests.support import Actor, case_body

METHODS = ("get", "put", "post", "patch", "delete")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return create_app(Settings(_env_file=None)).openapi()  # type: ignore[call-arg]


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in refs(item)]
    return []


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part]  # a KeyError is a dangling reference
    return node


def test_the_document_is_valid_openapi_without_dangling_refs(document: dict[str, Any]) -> None:
    validate(document)
    dangling = []
    for ref in refs(document):
        try:
            resolve(document, ref)
        except KeyError:
            dangling.append(ref)
    assert dangling == []


def test_the_case_chat_body_offers_only_the_case_threads(document: dict[str, Any]) -> None:
    body = document["paths"]["/api/cases/{case_id}/chats"]["post"]["requestBody"]["content"]
    schema = body["application/json"]["schema"]
    assert "$defs" not in schema
    assert schema["properties"]["threadType"]["enum"] == [
        "Invoice Chat",
        "Lead Chat",
        "Invoice Questions Chat",
    ]


def test_every_operation_documents_its_errors_as_problem_json(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        if path in UNGUARDED_PATHS:  # the health checks: public, no errors but 503
            continue
        responses = operation["responses"]
        statuses = {int(status) for status in responses}
        expected = {401, 422, 429, 431, 500}
        if "{" in path:
            expected.add(404)
        if method in ("POST", "PUT", "PATCH"):
            expected |= {400, 413}
        assert expected <= statuses, (method, path, sorted(statuses))
        for status, response in responses.items():
            if int(status) < 400:
                continue
            assert set(response["content"]) == {"application/problem+json"}, (method, path)
            schema = response["content"]["application/problem+json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Problem"}
            for code in CODES[int(status)]:
                assert f"`{code}`" in response["description"], (method, path, status)
        assert operation["security"] == [{"bearerKey": []}, {"xApiKey": []}]
        names = {p["name"].lower() for p in operation.get("parameters", [])}
        assert not names & {"authorization", "xapikey"}, (method, path)
    problem = document["components"]["schemas"]["Problem"]
    assert problem["required"] == ["type", "title", "status", "code", "detail"]
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_role_restricted_and_temporal_operations_document_403_and_503(
    document: dict[str, Any],
) -> None:
    paths = document["paths"]
    assert "403" in paths["/api/account"]["get"]["responses"]  # creditors only
    assert "403" in paths["/api/cases/{case_id}/accept"]["post"]["responses"]
    assert {"502", "503"} <= set(paths["/api/cases"]["post"]["responses"])
    assert "503" not in paths["/api/cases"]["get"]["responses"]  # the read model only


def test_page_bounds_in_the_schema_are_the_enforced_ones(document: dict[str, Any]) -> None:
    lists = 0
    for _, _, operation in operations(document):
        parameters = {p["name"]: p["schema"] for p in operation.get("parameters", [])}
        if "page" not in parameters:
            continue
        lists += 1
        page = parameters["page"]["anyOf"][0]
        size = parameters["pageSize"]["anyOf"][0]
        assert (page["minimum"], page["maximum"]) == (1, MAX_PAGE)
        assert (size["minimum"], size["maximum"]) == (1, MAX_PAGE_SIZE)
    # A case's chats and timeline come whole (not paged); GET /api/users, /api/payments and
    # /api/divisions page.
    assert lists == 8


async def test_page_zero_is_refused_as_the_schema_says(
    api: httpx.AsyncClient, creditor: Actor
) -> None:
    for params, field in (
        ({"page": 0}, "page"),
        ({"page": MAX_PAGE + 1}, "page"),
        ({"pageSize": 0}, "pageSize"),
        ({"PageSize": MAX_PAGE_SIZE + 1}, "pageSize"),
    ):
        response = await api.get("/api/cases", params=params, headers=creditor.headers)
        assert response.status_code == 422, response.text
        assert [e["field"] for e in response.json()["errors"]] == [field]
    response = await api.get("/api/cases", params={"page": MAX_PAGE}, headers=creditor.headers)
    assert response.status_code == 200, response.text


async def test_405_names_every_method_of_the_path(api: httpx.AsyncClient, creditor: Actor) -> None:
    response = await api.delete(f"/api/cases/{uuid.uuid4()}", headers=creditor.headers)
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["allow"] == "GET, PATCH"
    response = await api.put(f"/api/cases/{uuid.uuid4()}/notes", headers=creditor.headers)
    assert response.headers["allow"] == "GET, POST"


# -- what schemathesis found the server doing against the schema -------------------------------
async def test_a_number_is_not_a_date_or_timestamp(api: httpx.AsyncClient, creditor: Actor) -> None:
    for params in ({"lastModifiedAfter": "0.5"}, {"dateFrom": "1700000000"}):
        response = await api.get("/api/cases", params=params, headers=creditor.headers)
        assert response.status_code == 422, (params, response.text)
    response = await api.get("/api/tasks", params={"deadlineTo": "0"}, headers=creditor.headers)
    assert response.status_code == 422, response.text
    response = await api.post("/api/cases", json=case_body(date=0), headers=creditor.headers)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["date"]
    # ISO 8601 with or without an offset, and plain dates, still work.
    for value in ("2026-11-01T00:00:00Z", "2026-11-01T00:00:00", "2026-11-01"):
        response = await api.get(
            "/api/cases", params={"lastModifiedAfter": value}, headers=creditor.headers
        )
        assert response.status_code == 200, (value, response.text)


def test_a_strict_integer_takes_five_point_zero_as_five() -> None:
    assert ReviewEntry.model_validate({"rating": 5.0}).rating == 5
    for value in ("5", True, 5.5):
        with pytest.raises(ValidationError):
            ReviewEntry.model_validate({"rating": value})


async def test_files_for_a_lead_thread_without_its_partner_are_403_and_store_nothing(
    api: httpx.AsyncClient,
    creditor: Actor,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    case_id = (await new_case(api, creditor))["caseId"]
    response = await api.post(
        f"/api/cases/{case_id}/chats",
        data={"message": "Our terms", "threadType": "Lead Chat", "partnerId": str(uuid.uuid4())},
        files={"files": ("terms.pdf", PDF, "application/pdf")},
        headers={**creditor.headers, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 403, response.text  # was a 500 (no such partner)
    assert response.json()["code"] == "not_a_party"
    assert await count(sessions, Attachment) == 0
    assert stored_files(settings) == []
