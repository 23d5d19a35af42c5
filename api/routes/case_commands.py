"""Case actions: correct the data, set the bank account, assign, accept, reject, change status,
withdraw. Each is a workflow update run through ``CaseCommands`` (shared with ``case_work``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from pydantic import ConfigDict, EmailStr, Field
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.common import RawValue

from api.deps import (
    CreditorPrincipal,
    OpsPrincipal,
    PartnerPrincipal,
    SessionDep,
    TemporalDep,
    not_in_future,
    require_role,
    visible_case,
)
from api.errors import invalid
from api.idempotency import idempotent_after
from api.responses import json_response
from api.routes.cases import _bank_account_ref, _view
from api.workflow_calls import update_workflow
from domain.accounts import OrgRef
from domain.base import ApiModel
from domain.cases import (
    AssignBankAccountInput,
    AssignPartnerInput,
    CaseSubmission,
    CaseView,
    ChangeStatusInput,
    CorrectCaseInput,
    CountryAlpha2,
    CurrencyCode,
    Money,
    OptionalText,
    PartnerDecisionInput,
    ShortText,
)
from domain.enums import CaseStatus, DebtorType, OrgKind, Party, SubStatus
from domain.ids import case_workflow_id
from domain.plausible import InvoiceDate
from domain.transitions import CloseCode, Mover
from store import cases as case_store
from store.accounts import Principal
from store.models import Organisation
from workflows.case import CaseWorkflow

router = APIRouter(prefix="/cases", tags=["cases"])


@dataclass(frozen=True)
class CaseCommands:
    """What every case action needs besides its caller, resolved once per request."""

    request: Request
    session: AsyncSession
    client: Client

    async def run(
        self,
        principal: Principal,
        case_id: UUID,
        body: ApiModel | None,
        update: Callable[..., Any],
        make_input: Callable[[case_store.CaseRow], Awaitable[ApiModel] | ApiModel],
        *,
        render: Callable[[Any], ApiModel] | None = None,
        status_code: int = 200,
    ) -> Response:
        """Find the case (404 if not yours), send the update, answer with the case as it is now.

        With ``render``, answer instead with what it makes of the update's result (the payment,
        complaint or quote the update created). ``status_code`` is the status of a success.
        """
        session = self.session

        async def execute(row: case_store.CaseRow) -> Response:
            arg = make_input(row)
            if isinstance(arg, Awaitable):
                arg = await arg
            result = await update_workflow(
                self.request,
                principal,
                self.client,
                case_workflow_id(case_id),
                update,
                arg,
                # Answered from the read model below: the case record it returns is not needed.
                result_type=None if render is not None else RawValue,
            )
            if render is not None:
                return json_response(render(result), status_code=status_code)
            session.expire_all()
            fresh = await case_store.get_case(session=session, case_id=case_id, principal=principal)
            if fresh is None:  # the action ended the caller's access (a partner rejecting the case)
                return Response(status_code=204)
            return json_response(_view(fresh, dt.datetime.now(dt.UTC)), status_code=status_code)

        fingerprint = body.model_dump(mode="json", exclude_unset=True) if body else {}
        return await idempotent_after(
            self.request,
            principal,
            {"caseId": str(case_id), **fingerprint},
            lambda: visible_case(session, case_id, principal),
            execute,
        )


async def _case_commands(
    request: Request, session: SessionDep, client: TemporalDep
) -> CaseCommands:
    return CaseCommands(request, session, client)


CaseCommandsDep = Annotated[CaseCommands, Depends(_case_commands)]


def not_nullable(*fields: str) -> Callable[[dict[str, Any]], None]:
    """A ``json_schema_extra`` that drops ``null`` from these fields' schemas: a PATCH may leave
    them out, but null fails the merge with the case (422), so the schema must not offer it."""

    def drop_null(schema: dict[str, Any]) -> None:
        for name in fields:
            prop = schema["properties"][name]
            branches = [b for b in prop.pop("anyOf", []) if b != {"type": "null"}]
            if len(branches) == 1:
                prop.update(branches[0])
            elif branches:
                prop["anyOf"] = branches
            prop.pop("default", None)

    return drop_null


class DebtorCorrection(ApiModel):
    """The debtor fields a PATCH changes (``Debtor``'s rules); null clears an optional one."""

    model_config = ConfigDict(json_schema_extra=not_nullable("type", "name", "countryAlpha2"))

    type: DebtorType | None = None
    name: ShortText | None = None
    contact_person: OptionalText = None
    address: OptionalText = None
    city: Annotated[str | None, Field(max_length=100)] = None
    zip_code: Annotated[str | None, Field(max_length=20)] = None
    country_alpha2: CountryAlpha2 | None = None
    email: EmailStr | None = None


class CaseCorrection(ApiModel):
    """``PATCH /api/cases/{id}``: the fields to change (``CaseSubmission``'s rules);
    creditorReference cannot change."""

    model_config = ConfigDict(
        # ``dueDate: null`` removes the due date (it is optional).
        json_schema_extra=not_nullable(
            "currencyCode", "amountToRecover", "date", "claimDescription", "debtor"
        )
    )

    currency_code: CurrencyCode | None = None
    amount_to_recover: Money | None = None
    date: InvoiceDate | None = None
    due_date: InvoiceDate | None = None
    claim_description: Annotated[str, Field(min_length=1, max_length=4000)] | None = None
    debtor: DebtorCorrection | None = None


@router.patch("/{case_id}", response_model=CaseView, responses={404: {}, 409: {}, 422: {}})
async def correct_case(
    case_id: UUID,
    body: CaseCorrection,
    principal: CreditorPrincipal,
    commands: CaseCommandsDep,
) -> Response:
    """Correct a case's data while it is in intake (Created); validation runs again.

    ``debtor`` fields are merged into the current debtor; send ``null`` to clear one.
    """

    def corrected(row: case_store.CaseRow) -> CorrectCaseInput:
        case = row.case
        current = {
            "creditorReference": case.creditor_reference,
            "currencyCode": case.currency_code,
            "amountToRecover": str(case.amount_to_recover),
            "date": case.date.isoformat(),
            "dueDate": case.due_date.isoformat() if case.due_date else None,
            "claimDescription": case.claim_description,
            "debtor": case.debtor,
            "bankAccountId": str(case.bank_account_id) if case.bank_account_id else None,
            # Not correctable: the division the case was submitted for stays.
            "creditorDivisionId": (
                str(case.creditor_division_id) if case.creditor_division_id else None
            ),
        }
        changes = body.model_dump(mode="json", exclude_unset=True)
        if "debtor" in changes and changes["debtor"] is not None:
            changes["debtor"] = {**case.debtor, **changes["debtor"]}
        submission = CaseSubmission.model_validate({**current, **changes})
        not_in_future(submission.date, "date", principal)
        return CorrectCaseInput(submission=submission, user_id=principal.user_id)

    return await commands.run(
        principal,
        case_id,
        body,
        CaseWorkflow.correct_case,
        corrected,
    )


class BankAccountChoice(ApiModel):
    bank_account_id: UUID


@router.put(
    "/{case_id}/bank-account", response_model=CaseView, responses={404: {}, 409: {}, 422: {}}
)
async def set_bank_account(
    case_id: UUID,
    body: BankAccountChoice,
    principal: CreditorPrincipal,
    commands: CaseCommandsDep,
) -> Response:
    """Set the bank account collected money is paid out to (one of your organisation's)."""

    async def make(row: case_store.CaseRow) -> AssignBankAccountInput:
        ref = await _bank_account_ref(commands.session, principal, body.bank_account_id)
        return AssignBankAccountInput(bank_account=ref, user_id=principal.user_id)

    return await commands.run(
        principal,
        case_id,
        body,
        CaseWorkflow.assign_bank_account,
        make,
    )


async def partner_ref(session: AsyncSession, org_id: UUID) -> OrgRef | None:
    """The partner organisation ``org_id`` as workflows name it; None if it is no partner."""
    partner = await session.get(Organisation, org_id)
    if partner is None or partner.kind != OrgKind.PARTNER.value:
        return None
    return OrgRef(
        id=partner.id, name=partner.name, country=partner.country, timezone=partner.timezone
    )


class PartnerChoice(ApiModel):
    partner_id: UUID


@router.post(
    "/{case_id}/assign", response_model=CaseView, responses={403: {}, 404: {}, 409: {}, 422: {}}
)
async def assign_partner(
    case_id: UUID,
    body: PartnerChoice,
    principal: OpsPrincipal,
    commands: CaseCommandsDep,
) -> Response:
    """Ops: give a Validated case to a partner, who gets a ReviewNewCase task."""

    async def make(row: case_store.CaseRow) -> AssignPartnerInput:
        partner = await partner_ref(commands.session, body.partner_id)
        if partner is None:
            raise invalid("partnerId", "is not a partner organisation")
        return AssignPartnerInput(partner=partner, user_id=principal.user_id)

    return await commands.run(
        principal,
        case_id,
        body,
        CaseWorkflow.assign_partner,
        make,
    )


class Rejection(ApiModel):
    reason: Annotated[str, Field(min_length=1, max_length=2000)]


@router.post("/{case_id}/accept", response_model=CaseView, responses={403: {}, 404: {}, 409: {}})
async def accept_case(
    case_id: UUID,
    principal: PartnerPrincipal,
    commands: CaseCommandsDep,
) -> Response:
    """The assigned partner accepts the case: it goes In Collection and ReviewNewCase is solved."""
    return await commands.run(
        principal,
        case_id,
        None,
        CaseWorkflow.accept_case,
        lambda row: PartnerDecisionInput(partner_id=principal.org_id, user_id=principal.user_id),
    )


@router.post("/{case_id}/reject", status_code=204, responses={403: {}, 404: {}, 409: {}, 422: {}})
async def reject_case(
    case_id: UUID,
    body: Rejection,
    principal: PartnerPrincipal,
    commands: CaseCommandsDep,
) -> Response:
    """The assigned partner rejects the case with a reason: it is Validated again (204; the
    partner no longer sees the case)."""
    return await commands.run(
        principal,
        case_id,
        body,
        CaseWorkflow.reject_case,
        lambda row: PartnerDecisionInput(
            partner_id=principal.org_id, user_id=principal.user_id, reason=body.reason
        ),
    )


class StatusChange(ApiModel):
    """``POST /api/cases/{id}/status``: the partner's (or ops') status update."""

    status: CaseStatus
    sub_status: SubStatus | None = None
    close_code: CloseCode | None = None
    note: Annotated[str | None, Field(max_length=2000)] = None
    # On Hold / Paused: who must act, "Creditor" or "Partner" (More info required: the creditor).
    waiting_for: Party | None = None


class Withdrawal(ApiModel):
    note: Annotated[str | None, Field(max_length=2000)] = None


MOVER_OF_ROLE = {
    OrgKind.PARTNER: Mover.PARTNER,
    OrgKind.CREDITOR: Mover.CREDITOR,
    OrgKind.OPS: Mover.OPS,
}


# Partners and ops change a case's status; a creditor is pointed to /withdraw. The role is
# checked before the body, so a creditor gets 403 even for an invalid body.
StatusChanger = Annotated[
    Principal,
    Depends(
        require_role(
            OrgKind.PARTNER,
            OrgKind.OPS,
            detail="Creditors withdraw a case with POST /api/cases/{id}/withdraw.",
        )
    ),
]


@router.post(
    "/{case_id}/status", response_model=CaseView, responses={403: {}, 404: {}, 409: {}, 422: {}}
)
async def change_status(
    case_id: UUID,
    body: StatusChange,
    principal: StatusChanger,
    commands: CaseCommandsDep,
) -> Response:
    """Change status and sub-status with a note, as the transition table allows (409 names the
    allowed targets). Closing needs a ``closeCode``; resolving derives it from the sub-status
    and must fit the recorded payments; pausing needs ``waitingFor``."""
    return await commands.run(
        principal,
        case_id,
        body,
        CaseWorkflow.change_status,
        lambda row: ChangeStatusInput(
            mover=MOVER_OF_ROLE[principal.role],
            org_id=principal.org_id,
            user_id=principal.user_id,
            status=body.status,
            sub_status=body.sub_status,
            close_code=body.close_code,
            note=body.note,
            waiting_for=body.waiting_for,
        ),
    )


@router.post("/{case_id}/withdraw", response_model=CaseView, responses={403: {}, 404: {}, 409: {}})
async def withdraw_case(
    case_id: UUID,
    body: Withdrawal,
    principal: CreditorPrincipal,
    commands: CaseCommandsDep,
) -> Response:
    """The creditor stops collection: the case is Closed as "Withdrawn by client"."""
    return await commands.run(
        principal,
        case_id,
        body,
        CaseWorkflow.change_status,
        lambda row: ChangeStatusInput(
            mover=Mover.CREDITOR,
            org_id=principal.org_id,
            user_id=principal.user_id,
            status=CaseStatus.CLOSED,
            close_code=CloseCode.WITHDRAWN_BY_CLIENT,
            note=body.note or "Withdrawn by client",
        ),
    )
