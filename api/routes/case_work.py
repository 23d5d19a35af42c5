"""Working a case: the monthly survey, resume, payments, commission, review, complaints, quotes.

Every action goes through ``CaseCommands`` (idempotency, 404 for a case you cannot see, the
workflow update). Actions that create something (a payment, a complaint, a quote) answer with
it; the others answer with the case as it is now.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Response
from pydantic import AfterValidator, Field

from api.deps import (
    CreditorPrincipal,
    CurrentPrincipal,
    OpsPrincipal,
    PartnerOrOpsPrincipal,
    PartnerPrincipal,
    SessionDep,
    not_in_future,
    visible_case,
)
from api.errors import FieldError, Problem
from api.routes.case_commands import MOVER_OF_ROLE, CaseCommandsDep, partner_ref
from domain.base import INTEGRAL_FLOAT_AS_INT, ApiModel, decimal_json_schema
from domain.cases import (
    CaseDetails,
    CaseView,
    CommissionPayment,
    Complaint,
    DeclineQuoteInput,
    FileComplaintInput,
    Money,
    PartnerReview,
    Payment,
    Quote,
    RecordCommissionInput,
    RecordPaymentInput,
    RequestQuotesInput,
    RespondToComplaintInput,
    ResumeInput,
    ReviewPartnerInput,
    SelectQuoteInput,
    SubmitQuoteInput,
    SurveyInput,
    SurveyOutcome,
)
from domain.enums import CaseStatus, OrgKind, Party, SubStatus
from domain.plausible import PlausibleDate
from domain.transitions import CloseCode
from store import cases as case_store
from workflows.case import CaseWorkflow

router = APIRouter(prefix="/cases", tags=["case work"])

CENT = Decimal("0.01")
Amount = Annotated[Money, AfterValidator(lambda amount: amount.quantize(CENT))]
Text = Annotated[str, Field(min_length=1, max_length=4000)]
OptionalNote = Annotated[str | None, Field(max_length=2000)]


def _details(row: case_store.CaseRow) -> CaseDetails:
    """What the read model keeps about the work on the case."""
    return CaseDetails.model_validate(row.case.details)


# -- the monthly survey and resuming a hold ----------------------------------------------------
class SurveyAnswer(ApiModel):
    """``POST /api/cases/{id}/survey``: the partner's monthly update."""

    outcome: SurveyOutcome
    note: Text
    status: CaseStatus | None = None
    sub_status: SubStatus | None = None
    waiting_for: Party | None = None
    close_code: CloseCode | None = None


@router.post(
    "/{case_id}/survey", response_model=CaseView, responses={403: {}, 404: {}, 409: {}, 422: {}}
)
async def submit_survey(
    case_id: UUID, body: SurveyAnswer, principal: PartnerPrincipal, commands: CaseCommandsDep
) -> Response:
    """Answer the open monthly survey (solves UpdateCaseStatus): ``continue`` (optionally with a
    new In Collection / Payment Plan status), ``pause`` (needs ``waitingFor``) or ``close`` (status
    Resolved or Closed). 409 ``nothing_to_answer`` when no survey is open."""
    return await commands.run(
        principal,
        case_id,
        body,
        CaseWorkflow.submit_survey,
        lambda row: SurveyInput(
            partner_id=principal.org_id,
            user_id=principal.user_id,
            outcome=body.outcome,
            note=body.note,
            status=body.status,
            sub_status=body.sub_status,
            waiting_for=body.waiting_for,
            close_code=body.close_code,
        ),
    )


class Resumption(ApiModel):
    note: OptionalNote = None


@router.post("/{case_id}/resume", response_model=CaseView, responses={403: {}, 404: {}, 409: {}})
async def resume_case(
    case_id: UUID,
    principal: PartnerOrOpsPrincipal,
    commands: CaseCommandsDep,
    body: Resumption | None = None,
) -> Response:
    """End an On Hold: the case returns to the status it was held from, and the hold's task
    (MoreInfoNeeded, ClientInputRequired, FollowUpPausedCase) is solved. The body (an optional
    ``note``) may be left out, as FollowUpPausedCase's ``action`` does."""
    body = body or Resumption()
    return await commands.run(
        principal,
        case_id,
        body,
        CaseWorkflow.resume,
        lambda row: ResumeInput(
            org_id=principal.org_id,
            mover=MOVER_OF_ROLE[principal.role],
            user_id=principal.user_id,
            note=body.note,
        ),
    )


# -- payments and commission -------------------------------------------------------------------
class PaymentEntry(ApiModel):
    """``POST /api/cases/{id}/payments``: a payment the debtor made."""

    amount: Amount
    paid_on: PlausibleDate
    paid_to: Party
    note: OptionalNote = None


class PaymentTotals(ApiModel):
    currency_code: str
    amount_to_recover: Decimal
    paid: Decimal
    outstanding: Decimal


class PaymentList(ApiModel):
    payments: list[Payment]
    commission_payments: list[CommissionPayment]
    totals: PaymentTotals


@router.post(
    "/{case_id}/payments",
    status_code=201,
    response_model=Payment,
    responses={403: {}, 404: {}, 409: {}, 422: {}},
)
async def record_payment(
    case_id: UUID, body: PaymentEntry, principal: PartnerPrincipal, commands: CaseCommandsDep
) -> Response:
    """The partner working the case records a debtor payment (In Collection, Payment Plan or
    On Hold). Resolving as Paid needs payments covering the amount to recover."""

    def make(row: case_store.CaseRow) -> RecordPaymentInput:
        not_in_future(body.paid_on, "paidOn", principal)
        return RecordPaymentInput(
            partner_id=principal.org_id,
            user_id=principal.user_id,
            amount=body.amount,
            paid_on=body.paid_on,
            paid_to=body.paid_to,
            note=body.note,
        )

    return await commands.run(
        principal,
        case_id,
        body,
        CaseWorkflow.record_payment,
        make,
        render=Payment.model_validate,
        status_code=201,
    )


@router.get("/{case_id}/payments/summary", response_model=PaymentList, responses={401: {}, 404: {}})
async def payment_summary(
    case_id: UUID, principal: CurrentPrincipal, session: SessionDep
) -> PaymentList:
    """The debtor's payments and the commission payments, oldest first, with the totals
    (``GET /api/cases/{id}/payments`` is the debtor payments alone, as Debitura lists them)."""
    row = await visible_case(session, case_id, principal)
    details = _details(row)
    amount = row.case.amount_to_recover
    paid = sum((p.amount for p in details.payments), Decimal(0)).quantize(CENT)
    return PaymentList(
        payments=details.payments,
        commission_payments=details.commission_payments,
        totals=PaymentTotals(
            currency_code=row.case.currency_code,
            amount_to_recover=amount,
            paid=paid,
            outstanding=max(amount - paid, Decimal(0)).quantize(CENT),
        ),
    )


class CommissionEntry(ApiModel):
    """``POST /api/cases/{id}/commission-payments``: the creditor paid the commission invoice."""

    amount: Amount
    paid_on: PlausibleDate
    invoice_reference: Annotated[str | None, Field(max_length=100)] = None


@router.post(
    "/{case_id}/commission-payments",
    status_code=201,
    response_model=CommissionPayment,
    responses={403: {}, 404: {}, 409: {}, 422: {}},
)
async def record_commission(
    case_id: UUID, body: CommissionEntry, principal: PartnerPrincipal, commands: CaseCommandsDep
) -> Response:
    """The partner that worked the case records its commission payment (solves RecordPayment and
    ChasePayment; 409 ``nothing_to_answer`` when neither is open)."""

    def make(row: case_store.CaseRow) -> RecordCommissionInput:
        not_in_future(body.paid_on, "paidOn", principal)
        return RecordCommissionInput(
            partner_id=principal.org_id,
            user_id=principal.user_id,
            amount=body.amount,
            paid_on=body.paid_on,
            invoice_reference=body.invoice_reference,
        )

    return await commands.run(
        principal,
        case_id,
        body,
        CaseWorkflow.record_commission,
        make,
        render=CommissionPayment.model_validate,
        status_code=201,
    )


# -- the partner review ------------------------------------------------------------------------
class ReviewEntry(ApiModel):
    rating: Annotated[int, Field(strict=True, ge=0, le=10), INTEGRAL_FLOAT_AS_INT]
    comment: Annotated[str | None, Field(max_length=4000)] = None


@router.post(
    "/{case_id}/partner-review",
    status_code=201,
    response_model=PartnerReview,
    responses={403: {}, 404: {}, 409: {}, 422: {}},
)
async def review_partner(
    case_id: UUID, body: ReviewEntry, principal: CreditorPrincipal, commands: CaseCommandsDep
) -> Response:
    """Rate the partner that worked the Resolved or Closed case, 0 to 10 (solves ReviewPartner).
    Answers 201 with the review; a case is reviewed once (409 afterwards)."""
    return await commands.run(
        principal,
        case_id,
        body,
        CaseWorkflow.review_partner,
        lambda row: ReviewPartnerInput(
            user_id=principal.user_id, rating=body.rating, comment=body.comment
        ),
        render=lambda record: record.partner_review,
        status_code=201,
    )


# -- complaints --------------------------------------------------------------------------------
class ComplaintEntry(ApiModel):
    message: Text


class ComplaintResponse(ApiModel):
    complaint_id: Annotated[str, Field(min_length=1, max_length=100)]
    message: Text


@router.post(
    "/{case_id}/complaints",
    status_code=201,
    response_model=Complaint,
    responses={403: {}, 404: {}, 409: {}, 422: {}},
)
async def file_complaint(
    case_id: UUID, body: ComplaintEntry, principal: CreditorPrincipal, commands: CaseCommandsDep
) -> Response:
    """Complain about the partner working (or that worked) the case: it gets RespondToComplaint."""
    return await commands.run(
        principal,
        case_id,
        body,
        CaseWorkflow.file_complaint,
        lambda row: FileComplaintInput(user_id=principal.user_id, message=body.message),
        render=Complaint.model_validate,
        status_code=201,
    )


@router.get("/{case_id}/complaints", response_model=list[Complaint], responses={404: {}})
async def list_complaints(
    case_id: UUID, principal: CurrentPrincipal, session: SessionDep
) -> list[Complaint]:
    """The case's complaints with their responses, oldest first."""
    return _details(await visible_case(session, case_id, principal)).complaints


@router.post(
    "/{case_id}/complaints/responses",
    response_model=Complaint,
    responses={403: {}, 404: {}, 409: {}, 422: {}},
)
async def respond_to_complaint(
    case_id: UUID, body: ComplaintResponse, principal: PartnerPrincipal, commands: CaseCommandsDep
) -> Response:
    """The partner answers a complaint once (solves its RespondToComplaint); 404 for an unknown
    ``complaintId``."""
    return await commands.run(
        principal,
        case_id,
        body,
        CaseWorkflow.respond_to_complaint,
        lambda row: RespondToComplaintInput(
            partner_id=principal.org_id,
            user_id=principal.user_id,
            complaint_id=body.complaint_id,
            message=body.message,
        ),
        render=Complaint.model_validate,
    )


# -- quotes ------------------------------------------------------------------------------------
class QuoteRequest(ApiModel):
    partner_ids: Annotated[list[UUID], Field(min_length=1, max_length=50)]


class QuoteOffer(ApiModel):
    fee_percent: Annotated[
        Decimal,
        Field(gt=0, le=100, max_digits=5, decimal_places=2),
        AfterValidator(lambda fee: fee.quantize(CENT)),
        # More than 0, at most 100, at most 2 places (trailing zeros aside).
        decimal_json_schema(
            r"^\+?0*(100(\.0*)?|[1-9][0-9]?(\.[0-9]{0,2}0*)?|\.(0[1-9]|[1-9][0-9]?)0*)$",
            number={"exclusiveMinimum": 0, "maximum": 100, "multipleOf": 0.01},
        ),
    ]
    terms: Annotated[str | None, Field(max_length=4000)] = None


class QuoteDecline(ApiModel):
    reason: Annotated[str, Field(min_length=1, max_length=2000)]


class QuoteChoice(ApiModel):
    quote_id: Annotated[str, Field(min_length=1, max_length=100)]


@router.post(
    "/{case_id}/quote-requests",
    response_model=CaseView,
    responses={403: {}, 404: {}, 409: {}, 422: {}},
)
async def request_quotes(
    case_id: UUID, body: QuoteRequest, principal: OpsPrincipal, commands: CaseCommandsDep
) -> Response:
    """Ops invite partners to quote on a Validated case: each gets ProvideQuote and sees the case
    while its quote is open; the case is Collecting Quotes."""

    async def make(row: case_store.CaseRow) -> RequestQuotesInput:
        partners, errors = [], []
        for i, partner_id in enumerate(body.partner_ids):
            partner = await partner_ref(commands.session, partner_id)
            if partner is None:
                errors.append(FieldError(f"partnerIds[{i}]", f"{partner_id} is not a partner"))
            else:
                partners.append(partner)
        if errors:
            summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
            raise Problem(422, "validation_failed", f"Invalid input: {summary}", errors=errors)
        return RequestQuotesInput(partners=partners, user_id=principal.user_id)

    return await commands.run(principal, case_id, body, CaseWorkflow.request_quotes, make)


@router.post(
    "/{case_id}/quotes",
    status_code=201,
    response_model=Quote,
    responses={403: {}, 404: {}, 409: {}, 422: {}},
)
async def submit_quote(
    case_id: UUID, body: QuoteOffer, principal: PartnerPrincipal, commands: CaseCommandsDep
) -> Response:
    """An invited partner quotes its commission (solves ProvideQuote; the first quote asks the
    creditor to pick). The partner reviewing an Assigned case may quote custom terms instead of
    accepting it."""
    return await commands.run(
        principal,
        case_id,
        body,
        CaseWorkflow.submit_quote,
        lambda row: SubmitQuoteInput(
            partner=principal.org_ref,
            user_id=principal.user_id,
            fee_percent=body.fee_percent,
            terms=body.terms,
        ),
        render=Quote.model_validate,
        status_code=201,
    )


@router.post(
    "/{case_id}/quotes/decline", response_model=Quote, responses={403: {}, 404: {}, 422: {}}
)
async def decline_quote(
    case_id: UUID, body: QuoteDecline, principal: PartnerPrincipal, commands: CaseCommandsDep
) -> Response:
    """An invited partner will not quote (solves ProvideQuote); it no longer sees the case."""
    return await commands.run(
        principal,
        case_id,
        body,
        CaseWorkflow.decline_quote,
        lambda row: DeclineQuoteInput(
            partner_id=principal.org_id, user_id=principal.user_id, reason=body.reason
        ),
        render=Quote.model_validate,
    )


@router.get("/{case_id}/quotes", response_model=list[Quote], responses={404: {}})
async def list_quotes(
    case_id: UUID, principal: CurrentPrincipal, session: SessionDep
) -> list[Quote]:
    """The case's quotes, oldest first: all of them for the creditor and ops, its own for a
    partner."""
    quotes = _details(await visible_case(session, case_id, principal)).quotes
    if principal.role is OrgKind.PARTNER:
        return [q for q in quotes if q.partner.id == principal.org_id]
    return quotes


@router.post(
    "/{case_id}/quotes/selection",
    response_model=CaseView,
    responses={403: {}, 404: {}, 409: {}},
)
async def select_quote(
    case_id: UUID, body: QuoteChoice, principal: CreditorPrincipal, commands: CaseCommandsDep
) -> Response:
    """The creditor picks a submitted quote: the case is Assigned to that partner (ReviewNewCase)
    and the other quotes are declined."""
    return await commands.run(
        principal,
        case_id,
        body,
        CaseWorkflow.select_quote,
        lambda row: SelectQuoteInput(quote_id=body.quote_id, user_id=principal.user_id),
    )
