"""Debitura's official Python SDK (``debitura-debt-collection``, generated from its published
Customer API) against a real caseloop server: the calls whose shapes issue 12 adopts so far.
docs/api.md "Differences from Debitura's API" lists what the SDK still does not get."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import pydantic
import pytest
from debitura_debt_collection import ApiClient, CasesApi, Configuration
from debitura_debt_collection.models import (
    DebituraWebExternalApiContractsV1CasesDebtorDto as DebtorDto,
)
from debitura_debt_collection.models import (
    DebituraWebExternalApiContractsV1CasesInvoiceDto as InvoiceDto,
)
from debitura_debt_collection.models import (
    DebituraWebExternalApiContractsV1CasesRequestsCreateCollectionCaseRequestApiViewModel as CreateCase,
)
from debitura_debt_collection.models import (
    DebituraWebExternalApiContractsV1ChatsChatDto as ChatDto,
)
from debitura_debt_collection.models import (
    DebituraWebExternalApiContractsV1ChatsSendChatRequest as SendChatRequest,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.enums import OrgKind
from tests.api.test_status import in_collection, move
from tests.api.test_tasks import assign, bank_account, sign
from tests.support import Actor, make_actor

T = TypeVar("T")


async def _in_thread(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """The SDK is synchronous; the server runs in this test's event loop."""
    return await asyncio.to_thread(call, *args, **kwargs)


def _cases_api(url: str, actor: Actor) -> CasesApi:
    config = Configuration(host=f"{url}/api", api_key={"ApiKey": actor.key})
    return CasesApi(ApiClient(config))


def _request(reference: str, bank_account_id: str | None = None) -> CreateCase:
    """A case as Debitura's SDK builds it: dates as date-times, no due date, a float amount."""
    return CreateCase(
        currency_code="DKK",
        var_date=dt.datetime(2026, 9, 1),
        claim_description="Invoice 2026-0917, consulting",
        creditor_reference=reference,
        amount_to_recover=12500.5,
        debtor=DebtorDto(
            type="Company",
            name="Nordisk Tømrer ApS",
            contact_person="Jens Hansen",
            country_alpha2="DK",
            email="jens@example.dk",
        ),
    )


async def test_debituras_sdk_creates_lists_and_reads_the_timeline_of_caseloop_cases(
    served: str, creditor: Actor, partner: Actor, ops: Actor
) -> None:
    cases = _cases_api(served, creditor)
    async with httpx.AsyncClient(base_url=served) as api:
        await sign(api, creditor)
        account = await bank_account(api, creditor)

        # cases_post: caseloop answers 201 Created, which the 1.0.0 SDK's response map (200
        # only) does not deserialize, so read the answer with its ``_with_http_info`` variant;
        # the body is Debitura's InvoiceDto shape all the same.
        first = await _in_thread(cases.cases_post, None, _request("SDK-1"))
        assert first is None, "the SDK maps only a 200 answer"
        answer = await _in_thread(cases.cases_post_with_http_info, "sdk-key-2", _request("SDK-2"))
        assert answer.status_code == 201
        created = InvoiceDto.from_json(answer.raw_data.decode())
        assert created is not None
        assert (created.creditor_reference, created.var_date, created.due_date) == (
            "SDK-2",
            dt.datetime(2026, 9, 1),
            None,
        )
        assert created.lifecycle == "Pending Verification"
        assert created.debtor is not None and created.debtor.name == "Nordisk Tømrer ApS"
        case_id = json.loads(answer.raw_data)["caseId"]

        # cases_get: its ``cases`` filled, Debitura's paging and filters sent as it sends them.
        listed = await _in_thread(cases.cases_get, page=1, page_size=10)
        assert listed.page.total_results == 2
        assert [c.creditor_reference for c in listed.cases or []] == ["SDK-2", "SDK-1"]
        only = await _in_thread(cases.cases_get, ids=[case_id], statuses=["PendingVerification"])
        assert [c.creditor_reference for c in only.cases or []] == ["SDK-2"]
        by_date = await _in_thread(cases.cases_get, sort="DateCreated:asc", page_size=1)
        assert [c.creditor_reference for c in by_date.cases or []] == ["SDK-1"]
        assert (by_date.page.page_size, by_date.page.total_pages) == (1, 2)

        # cases_id_timeline_get: items with date, title and actor, and the collection stage.
        put = await api.put(
            f"/api/cases/{case_id}/bank-account",
            json={"bankAccountId": account},
            headers=creditor.headers,
        )
        assert put.status_code == 200, put.text
        for _ in range(100):
            got = await api.get(f"/api/cases/{case_id}", headers=creditor.headers)
            if got.json()["status"] == "Validated":
                break
            await asyncio.sleep(0.05)
        assert (await assign(api, ops, case_id, partner)).status_code == 200
        accepted = await api.post(f"/api/cases/{case_id}/accept", headers=partner.headers)
        assert accepted.status_code == 200, accepted.text
        moved = await move(
            api, partner, case_id, status="In Collection", subStatus="Legal proceedings initiated"
        )
        assert moved.status_code == 200, moved.text
        timeline = await _in_thread(cases.cases_id_timeline_get, case_id)
        assert timeline.current_engagement_phase == "Legal"
        items = timeline.items or []
        assert items and all(i.var_date and i.title and i.actor for i in items)
        assert (items[0].title, items[0].actor.type, items[0].actor.name) == (
            "Created",
            "System",
            "API",
        )
        assert items[-1].title == "In Collection: Legal proceedings initiated"
        assert items[-1].actor.type == "Partner user"
        assert [i.var_date for i in items] == sorted(i.var_date for i in items)


async def test_debituras_sdk_posts_chat_messages_as_a_named_user_and_reads_them_back(
    served: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    colleague = await make_actor(sessions, OrgKind.CREDITOR, org_id=creditor.org_id)
    async with httpx.AsyncClient(base_url=served) as api:
        cid = (await in_collection(api, creditor, partner, ops))["caseId"]
    cases = _cases_api(served, creditor)

    # cases_id_chats_post with Debitura's SendChatRequest: userEmail (preferred) or userId.
    # caseloop answers 201 Created, which the 1.0.0 SDK's map (200 only) does not read; the raw
    # answer is the ChatDto all the same (as cases_post, docs/api.md "Differences").
    by_email = SendChatRequest(message="Any news?", user_email=colleague.principal.user_email)
    answer = await _in_thread(cases.cases_id_chats_post_with_http_info, cid, by_email)
    assert (answer.status_code, answer.data) == (201, None)
    posted = json.loads(answer.raw_data)
    assert (posted["message"], posted["user"]["email"]) == (
        "Any news?",
        colleague.principal.user_email,
    )
    by_id = SendChatRequest(message="Still there?", user_id=str(creditor.principal.user_id))
    assert await _in_thread(cases.cases_id_chats_post, cid, by_id) is None
    stranger = SendChatRequest(message="Nope", user_email=partner.principal.user_email)
    refused = await _in_thread(cases.cases_id_chats_post_without_preload_content, cid, stranger)
    assert refused.status == 422
    assert json.loads(refused.data)["code"] == "unknown_sender"

    # cases_id_chats_get: caseloop's user ids are UUIDs where Debitura's are integers, so the
    # SDK's typed answer stops at user.id; with that one field (and the role, a name in
    # caseloop) set aside, each message reads as Debitura's ChatDto.
    with pytest.raises(pydantic.ValidationError) as typed:
        await _in_thread(cases.cases_id_chats_get, cid)
    assert [e["loc"] for e in typed.value.errors()] == [("id",)]
    raw = await _in_thread(cases.cases_id_chats_get_without_preload_content, cid)
    listed = json.loads(raw.data)
    assert [(m["role"], m["user"]["id"]) for m in listed] == [
        ("Creditor", str(colleague.principal.user_id)),
        ("Creditor", str(creditor.principal.user_id)),
    ]
    for item in listed:
        role, user_id = item.pop("role"), item["user"].pop("id")
        dto = ChatDto.from_dict(item)
        assert dto is not None and dto.user is not None
        assert (dto.role_label, dto.is_seen, dto.user.email) == (role, False, item["user"]["email"])
        assert (
            dto.date_created == dto.date_updated == dt.datetime.fromisoformat(item["dateCreated"])
        )
        assert user_id and dto.id == item["id"]
    assert [m["message"] for m in listed] == ["Any news?", "Still there?"]
