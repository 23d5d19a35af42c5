"""``GET /api/payments``: the debtor payments of every case the caller sees, projected into
``case_payments`` as they are recorded."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.enums import OrgKind
from tests.api.test_status import in_collection, pay
from tests.support import Actor, make_actor


async def test_payments_lists_the_recorded_payments_of_the_cases_each_caller_sees(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    case = await in_collection(api, creditor, partner, ops)
    cid = case["caseId"]
    first = (await pay(api, partner, cid, "100.00")).json()
    second = (await pay(api, partner, cid, "250.50", paidTo="Partner")).json()

    answer = await api.get("/api/payments", headers=creditor.headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["page"]["totalResults"] == 2
    newest = body["payments"][0]
    assert newest == {
        "id": second["id"],
        "dateCreated": second["recordedAt"],
        "dateUpdated": second["recordedAt"],
        "date": second["paidOn"],
        "amount": "250.50",
        "recipient": "Partner",
        "method": None,
        "currency": "DKK",
        "invoice": {
            "status": "In Collection",
            "reference": case["creditorReference"],
            "invoiceId": cid,
        },
    }
    assert [p["id"] for p in body["payments"]] == [second["id"], first["id"]]
    for reader in (partner, ops):
        seen = (await api.get("/api/payments", headers=reader.headers)).json()
        assert [p["id"] for p in seen["payments"]] == [second["id"], first["id"]]
    paged = await api.get("/api/payments", params={"pageSize": 1, "page": 2}, headers=ops.headers)
    assert [p["id"] for p in paged.json()["payments"]] == [first["id"]]

    for kind in (OrgKind.CREDITOR, OrgKind.PARTNER):
        other = await make_actor(sessions, kind)
        theirs = (await api.get("/api/payments", headers=other.headers)).json()
        assert (theirs["payments"], theirs["page"]["totalResults"]) == ([], 0)


async def test_payments_without_a_key_is_401(api: httpx.AsyncClient) -> None:
    assert (await api.get("/api/payments")).status_code == 401
