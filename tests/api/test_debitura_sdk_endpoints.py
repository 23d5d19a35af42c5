"""Debitura's official Python SDK (``debitura-debt-collection``) against a real caseloop server:
the endpoints issue 12 item 10 adds (``MeApi``, ``UsersApi``, the case lookups by reference and
the case's files, ``PaymentsApi``). docs/api.md "Differences from Debitura's API" lists what still differs."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
from debitura_debt_collection import (
    ApiClient,
    CasesApi,
    Configuration,
    MeApi,
    PaymentsApi,
    UsersApi,
)
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.enums import OrgKind
from store.db import transaction
from store.models import Attachment, Case
from tests.api.test_status import in_collection, pay
from tests.support import SEED_TIME, Actor, add_case, make_actor

T = TypeVar("T")


async def _in_thread(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """The SDK is synchronous; the server runs in this test's event loop."""
    return await asyncio.to_thread(call, *args, **kwargs)


def _client(url: str, actor: Actor) -> ApiClient:
    return ApiClient(Configuration(host=f"{url}/api", api_key={"ApiKey": actor.key}))


async def test_debituras_sdk_reads_me_and_the_users_of_the_callers_organisation(
    served: str, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    colleague = await make_actor(sessions, OrgKind.CREDITOR, org_id=creditor.org_id)
    await make_actor(sessions, OrgKind.CREDITOR)  # another organisation's user
    client = _client(served, creditor)

    me = await _in_thread(MeApi(client).me_get)
    assert (me.id, me.company_name, me.country) == (
        str(creditor.org_id),
        creditor.principal.org_name,
        "DK",
    )

    users = await _in_thread(UsersApi(client).users_get, page=1, page_size=1)
    assert users.page.total_results == 2
    assert users.page.total_pages == 2
    assert [(u.id, u.email) for u in users.users or []] == [
        (str(creditor.principal.user_id), creditor.principal.user_email)
    ]
    rest = await _in_thread(UsersApi(client).users_get, page=2, page_size=1)
    assert [u.id for u in rest.users or []] == [str(colleague.principal.user_id)]


async def test_debituras_sdk_finds_a_case_by_either_reference_and_lists_its_files(
    served: str, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    case_id = await add_case(sessions, creditor, reference="SDK-REF/9")
    async with transaction(sessions) as session:
        number = await session.scalar(select(Case.case_number).where(Case.id == case_id))
        file = Attachment(
            id=uuid.uuid4(),
            case_id=case_id,
            partner_id=None,
            org_id=creditor.org_id,
            user_id=creditor.principal.user_id,
            filename="invoice.pdf",
            content_type="application/pdf",
            size=2048,
            sha256="0" * 64,
            storage_key=uuid.uuid4().hex,
            created_at=SEED_TIME,
        )
        session.add(file)
    assert number is not None
    cases = CasesApi(_client(served, creditor))

    by_reference = await _in_thread(
        cases.cases_by_creditor_reference_creditor_reference_get, "SDK-REF/9"
    )
    assert by_reference.creditor_reference == "SDK-REF/9"
    by_number = await _in_thread(cases.cases_case_reference_case_reference_get, number)
    assert by_number.creditor_reference == "SDK-REF/9"

    [listed] = await _in_thread(cases.cases_id_files_get, str(case_id))
    assert (listed.id, listed.case_id, listed.file_name, listed.entity_type) == (
        str(file.id),
        str(case_id),
        "invoice.pdf",
        "Chat",
    )
    assert listed.date_created == dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
    assert listed.url == f"/api/cases/{case_id}/attachments/{file.id}"


async def test_debituras_sdk_lists_the_payments_of_the_callers_cases(
    served: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    async with httpx.AsyncClient(base_url=served) as api:
        case = await in_collection(api, creditor, partner, ops)
        paid = await pay(api, partner, case["caseId"], "100.00")
        assert paid.status_code == 201, paid.text

    listed = await _in_thread(
        PaymentsApi(_client(served, creditor)).payments_get, page=1, page_size=10
    )
    assert listed.page.total_results == 1
    [payment] = listed.payments or []
    assert (payment.id, payment.recipient, payment.currency) == (
        paid.json()["id"],
        "Creditor",
        "DKK",
    )
    assert payment.invoice.invoice_id == case["caseId"]
    assert payment.invoice.reference == case["creditorReference"]
    assert payment.gross_amount is None, "caseloop states amounts as decimal strings (amount)"

    stranger = await make_actor(sessions, OrgKind.CREDITOR)
    theirs = await _in_thread(PaymentsApi(_client(served, stranger)).payments_get)
    assert (theirs.payments, theirs.page.total_results) == ([], 0)
