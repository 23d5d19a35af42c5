"""Bank accounts: where collected money for a creditor's cases is paid out."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, Field, WithJsonSchema
from sqlalchemy import select

from api.deps import CreditorPrincipal, SessionDep
from api.idempotency import idempotent
from domain.base import ApiModel
from domain.cases import CurrencyCode
from store.db import transaction
from store.models import BankAccount

router = APIRouter(prefix="/bank-accounts", tags=["bank accounts"])


def _iban(value: str) -> str:
    """ISO 13616: letters and digits, country code, check digits that pass mod 97."""
    iban = value.replace(" ", "").upper()
    if not (15 <= len(iban) <= 34) or not iban.isalnum() or not iban[:2].isalpha():
        raise ValueError("is not an IBAN")
    digits = "".join(str(int(ch, 36)) for ch in iban[4:] + iban[:4])
    if int(digits) % 97 != 1:
        raise ValueError("has wrong check digits")
    return iban


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
        async with transaction(request.app.state.sessions) as session:
            account = BankAccount(
                id=uuid.uuid4(),
                org_id=principal.org_id,
                iban=body.iban,
                holder_name=body.holder_name,
                currency_code=body.currency_code,
                created_at=dt.datetime.now(dt.UTC),
            )
            session.add(account)
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
