"""Debitura's official Python SDK against a real caseloop server: a case read under Debitura's
names (``id``, ``reference``, ``currency``, ``dateUpdated``, ``collectionPartner``) beside
caseloop's, and a case's payments (``CasesApi.cases_id_payments_get``)."""

from __future__ import annotations

import json

import httpx
import pytest
from debitura_debt_collection import CasesApi
from debitura_debt_collection.exceptions import NotFoundException
from debitura_debt_collection.models import (
    DebituraWebExternalApiContractsV1CasesInvoiceDto as InvoiceDto,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.enums import OrgKind
from tests.api.test_debitura_sdk import _request
from tests.api.test_debitura_sdk_endpoints import _client, _in_thread
from tests.api.test_status import in_collection, pay
from tests.support import Actor, make_actor


async def test_debituras_sdk_reads_a_cases_id_reference_currency_and_partner(
    served: str, creditor: Actor, partner: Actor, ops: Actor
) -> None:
    cases = CasesApi(_client(served, creditor))
    posted = await _in_thread(cases.cases_post_with_http_info, "sdk-fields", _request("SDK-F"))
    created = InvoiceDto.from_json(posted.raw_data.decode())
    raw = json.loads(posted.raw_data)
    assert created is not None
    assert (created.id, created.reference, created.currency) == (
        raw["caseId"],
        raw["caseNumber"],
        "DKK",
    )
    assert created.date_updated is not None
    assert raw["dateUpdated"] == raw["lastModified"]
    assert created.collection_partner is None, "no partner works the case yet"

    async with httpx.AsyncClient(base_url=served) as api:
        case = await in_collection(api, creditor, partner, ops)
    read = await _in_thread(cases.cases_id_get, case["caseId"])
    assert (read.id, read.reference) == (case["caseId"], case["caseNumber"])
    assert read.collection_partner is not None
    assert read.collection_partner.name == case["assignedPartner"] == partner.principal.org_name
    listed = await _in_thread(cases.cases_get, ids=[case["caseId"]])
    assert [(c.id, c.currency) for c in listed.cases or []] == [(case["caseId"], "DKK")]


async def test_debituras_sdk_lists_a_cases_payments_and_the_summary_keeps_the_totals(
    served: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    async with httpx.AsyncClient(base_url=served) as api:
        case = await in_collection(api, creditor, partner, ops)
        other = await in_collection(api, creditor, partner, ops)
        first = await pay(api, partner, case["caseId"], "100.00")
        second = await pay(api, partner, case["caseId"], "250.50", paidTo="Partner")
        elsewhere = await pay(api, partner, other["caseId"], "1.00")
        assert {first.status_code, second.status_code, elsewhere.status_code} == {201}
        summary = await api.get(
            f"/api/cases/{case['caseId']}/payments/summary", headers=creditor.headers
        )
    assert summary.status_code == 200, summary.text
    assert summary.json()["totals"]["paid"] == "350.50"

    for reader in (creditor, partner, ops):
        listed = await _in_thread(
            CasesApi(_client(served, reader)).cases_id_payments_get, case["caseId"]
        )
        assert [(p.id, p.recipient, p.currency) for p in listed] == [
            (first.json()["id"], "Creditor", "DKK"),
            (second.json()["id"], "Partner", "DKK"),
        ]
        assert all(p.invoice.invoice_id == case["caseId"] for p in listed)
        assert all(p.invoice.reference == case["creditorReference"] for p in listed)
        assert [p.var_date.date().isoformat() for p in listed if p.var_date] == [
            first.json()["paidOn"],
            second.json()["paidOn"],
        ]

    stranger = await make_actor(sessions, OrgKind.CREDITOR)
    with pytest.raises(NotFoundException):
        await _in_thread(CasesApi(_client(served, stranger)).cases_id_payments_get, case["caseId"])
