"""Bank accounts: where collected money for a creditor's cases is paid out."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, Field, WithJsonSchema
from schwifty import IBAN, exceptions
from schwifty.exceptions import SchwiftyException
from sqlalchemy import select

from api.deps import CreditorPrincipal, SessionDep
from api.idempotency import derived_id, idempotent, key_reused
from domain.base import ApiModel
from domain.cases import CurrencyCode
from store.db import insert_once
from store.models import BankAccount

router = APIRouter(prefix="/bank-accounts", tags=["bank accounts"])


# What each of schwifty's refusals means for the client (its own messages repeat the input).
IBAN_ERRORS: dict[type[SchwiftyException], str] = {
    exceptions.InvalidCountryCode: "is not an IBAN: unknown country code",
    exceptions.InvalidLength: "has the wrong length for an IBAN of its country",
    exceptions.InvalidStructure: "does not have the format of an IBAN of its country",
    exceptions.InvalidChecksumDigits: "has wrong check digits",
    exceptions.InvalidBBANChecksum: "fails the national checksum of its account number",
}


def _iban(value: str) -> str:
    """An ISO 13616 IBAN in its compact form, checked by schwifty against its country's rules:
    the length and structure of the country's IBAN, the check digits and, where the country
    has one, the national checksum of the account number."""
    try:
        iban = IBAN(value, validate_bban=True)
    except SchwiftyException as exc:
        raise ValueError(IBAN_ERRORS.get(type(exc), "is not a valid IBAN")) from exc
    return str(iban.compact)


# Check digits are beyond a pattern: the schema names the format ("iban", ISO 13616).
IBAN_SCHEMA = {"type": "string", "format": "iban"}


class BankAccountBody(ApiModel):
    iban: Annotated[str, AfterValidator(_iban), WithJsonSchema(IBAN_SCHEMA)]
    holder_name: Annotated[str, Field(min_length=1, max_length=200)]
    currency_code: CurrencyCode


class BankAccountView(ApiModel):
    id: uuid.UUID
    iban: str
    holder_name: str
    currency_code: str
    date_created: dt.datetime


def _view(account: BankAccount) -> BankAccountView:
    return BankAccountView(
        id=account.id,
        iban=account.iban,
        holder_name=account.holder_name,
        currency_code=account.currency_code,
        date_created=account.created_at,
    )


@router.post("", status_code=201, response_model=BankAccountView, responses={403: {}, 422: {}})
async def create_bank_account(
    body: BankAccountBody, request: Request, principal: CreditorPrincipal
) -> Response:
    """Register a payout bank account; set it on cases with ``PUT /api/cases/{id}/bank-account``."""

    async def execute() -> Response:
        account, _ = await insert_once(
            request.app.state.sessions,
            BankAccount(
                # From the key, so a retry whose first attempt was committed but never answered
                # finds that account instead of registering a second one.
                id=derived_id(request, principal, "bank-account"),
                org_id=principal.org_id,
                iban=body.iban,
                holder_name=body.holder_name,
                currency_code=body.currency_code,
                created_at=dt.datetime.now(dt.UTC),
            ),
        )
        if (account.org_id, account.iban, account.holder_name, account.currency_code) != (
            principal.org_id,
            body.iban,
            body.holder_name,
            body.currency_code,
        ):
            raise key_reused()
        return JSONResponse(_view(account).model_dump(mode="json"), status_code=201)

    return await idempotent(request, principal, body.model_dump(mode="json"), execute)


@router.get("", response_model=list[BankAccountView])
async def list_bank_accounts(
    principal: CreditorPrincipal, session: SessionDep
) -> list[BankAccountView]:
    """Your organisation's bank accounts, oldest first."""
    accounts = await session.scalars(
        select(BankAccount)
        .where(BankAccount.org_id == principal.org_id)
        .order_by(BankAccount.created_at, BankAccount.id)
    )
    return [_view(a) for a in accounts]
