"""caseloop's user actions, driven through the public HTTP API only (docs/api.md)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import httpx

from bench.harness import Actor, Stack, wait_for
from domain.enums import OrgKind
from tests.support import case_body

IBAN_DK = "DK5000400440116243"

# Status changes that can follow each other for as long as a benchmark needs.
STATUS_CYCLE = (
    {"status": "In Collection", "subStatus": "First reminder sent", "note": "Letter sent"},
    {"status": "Payment Plan", "subStatus": "Plan active", "note": "Instalments agreed"},
)


class Refused(RuntimeError):
    """The API did not answer as a working client expects."""


def expect(response: httpx.Response, status: int) -> dict[str, Any]:
    if response.status_code != status:
        raise Refused(
            f"{response.request.method} {response.request.url.path}: "
            f"{response.status_code} {response.text[:500]}"
        )
    return dict(response.json()) if response.content else {}


@dataclass
class Api:
    """One client's view of the API."""

    http: httpx.AsyncClient

    async def create_case(self, creditor: Actor, **overrides: Any) -> dict[str, Any]:
        return expect(
            await self.http.post(
                "/api/cases", json=case_body(**overrides), headers=creditor.headers
            ),
            201,
        )

    async def sign_contract(self, creditor: Actor) -> None:
        expect(await self.http.post("/api/account/contract/sign", headers=creditor.headers), 200)

    async def new_bank_account(self, creditor: Actor) -> str:
        body = {"iban": IBAN_DK, "holderName": "Acme ApS", "currencyCode": "DKK"}
        created = expect(
            await self.http.post("/api/bank-accounts", json=body, headers=creditor.headers), 201
        )
        return str(created["id"])

    async def set_bank_account(
        self, creditor: Actor, case_id: str, account_id: str
    ) -> dict[str, Any]:
        return expect(
            await self.http.put(
                f"/api/cases/{case_id}/bank-account",
                json={"bankAccountId": account_id},
                headers=creditor.headers,
            ),
            200,
        )

    async def case(self, actor: Actor, case_id: str) -> dict[str, Any]:
        return expect(await self.http.get(f"/api/cases/{case_id}", headers=actor.headers), 200)

    async def until_status(
        self, actor: Actor, case_id: str, status: str, *, answer: dict[str, Any] | None = None
    ) -> int:
        """Poll ``GET /api/cases/{id}`` until the case has ``status``; returns how many GETs.
        ``answer``: the case as the last write answered it; no GET if it has ``status``."""
        if answer is not None and answer["status"] == status:
            return 0
        reads = 0

        async def reached() -> bool:
            nonlocal reads
            reads += 1
            return (await self.case(actor, case_id))["status"] == status

        await wait_for(reached, seconds=60, every=0.01)
        return reads

    async def assign(self, ops: Actor, case_id: str, partner: Actor) -> None:
        expect(
            await self.http.post(
                f"/api/cases/{case_id}/assign",
                json={"partnerId": str(partner.org_id)},
                headers=ops.headers,
            ),
            200,
        )

    async def accept(self, partner: Actor, case_id: str) -> None:
        expect(await self.http.post(f"/api/cases/{case_id}/accept", headers=partner.headers), 200)

    async def post_message(
        self, actor: Actor, case_id: str, message: str, **more: Any
    ) -> dict[str, Any]:
        return expect(
            await self.http.post(
                f"/api/cases/{case_id}/chats",
                json={"message": message, **more},
                headers=actor.headers,
            ),
            201,
        )

    async def change_status(self, actor: Actor, case_id: str, **body: Any) -> None:
        expect(
            await self.http.post(f"/api/cases/{case_id}/status", json=body, headers=actor.headers),
            200,
        )

    async def request_quotes(self, ops: Actor, case_id: str, partners: list[Actor]) -> None:
        expect(
            await self.http.post(
                f"/api/cases/{case_id}/quote-requests",
                json={"partnerIds": [str(p.org_id) for p in partners]},
                headers=ops.headers,
            ),
            200,
        )


@dataclass
class Parties:
    """A creditor ready to submit cases (contract signed, bank account), a partner and ops."""

    creditor: Actor
    partner: Actor
    ops: Actor
    bank_account: str


async def parties(
    stack: Stack, *, partner: Actor | None = None, ops: Actor | None = None
) -> Parties:
    api = Api(stack.http)
    creditor = await stack.actor(OrgKind.CREDITOR)
    await api.sign_contract(creditor)
    account = await api.new_bank_account(creditor)
    return Parties(
        creditor,
        partner or await stack.actor(OrgKind.PARTNER),
        ops or await stack.actor(OrgKind.OPS),
        account,
    )


async def validated_case(api: Api, who: Parties) -> str:
    """A Validated case of ``who.creditor``; returns its id."""
    created = await api.create_case(who.creditor, bankAccountId=who.bank_account)
    case_id = str(created["caseId"])
    await api.until_status(who.creditor, case_id, "Validated", answer=created)
    return case_id


async def case_in_collection(api: Api, who: Parties) -> str:
    """A case the partner has accepted (In Collection); returns its id."""
    case_id = await validated_case(api, who)
    await api.assign(who.ops, case_id, who.partner)
    await api.accept(who.partner, case_id)
    return case_id


class Conversation:
    """Chat messages that alternate between the partner and the creditor, as a real exchange
    does (each one answers the other's chat task and raises one for the other side)."""

    def __init__(self, api: Api, who: Parties, case_id: str) -> None:
        self.api, self.who, self.case_id = api, who, case_id
        self._turn = itertools.count()

    async def say(self) -> None:
        n = next(self._turn)
        actor = self.who.partner if n % 2 == 0 else self.who.creditor
        await self.api.post_message(
            actor, self.case_id, f"Message {n}: the debtor called back about the invoice."
        )


class StatusCycle:
    """Status changes by the working partner, going back and forth between two statuses."""

    def __init__(self, api: Api, who: Parties, case_id: str) -> None:
        self.api, self.who, self.case_id = api, who, case_id
        self._turn = itertools.count()

    async def change(self) -> None:
        body = STATUS_CYCLE[next(self._turn) % len(STATUS_CYCLE)]
        await self.api.change_status(self.who.partner, self.case_id, **body)
