"""Debtor payments in Debitura's ``PaymentDto`` shape: ``GET /api/payments``, of every case you
see (``PaymentsApi.payments_get``), and ``GET /api/cases/{id}/payments``, of one case
(``CasesApi.cases_id_payments_get``). A case's payments with its commission payments and totals
are ``GET /api/cases/{id}/payments/summary`` (``case_work``)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from uuid import UUID

from fastapi import APIRouter

from api.deps import CurrentPrincipal, SessionDep, visible_case
from api.pagination import PageDep, PageInfo, page_info
from domain.base import ApiModel
from domain.enums import CaseStatus, Party
from store import payments as payment_store
from store.models import Case, CasePaymentRow

router = APIRouter(tags=["payments"])


class PaymentInvoice(ApiModel):
    """Debitura's ``PaymentRelatedInvoiceDto``: the case the payment belongs to (``invoiceId``
    its id, ``reference`` the creditor's reference, ``status`` its status)."""

    status: CaseStatus
    reference: str
    invoice_id: UUID


class PaymentListItem(ApiModel):
    """Debitura's ``PaymentDto`` names: ``date`` the day paid, ``recipient`` who received it
    (``paidTo``), ``currency`` the case's; caseloop records no ``method`` (null) and states the
    amount as ``amount``, a decimal string, not Debitura's float ``grossAmount``."""

    id: str
    date_created: dt.datetime
    date_updated: dt.datetime
    date: dt.date
    amount: Decimal
    recipient: Party
    method: None
    currency: str
    invoice: PaymentInvoice


class PaymentList(ApiModel):
    """Debitura's ``PaymentListApiDTO``."""

    page: PageInfo
    payments: list[PaymentListItem]


@router.get("/payments", response_model=PaymentList, responses={401: {}})
async def list_payments(
    principal: CurrentPrincipal, session: SessionDep, page: PageDep
) -> PaymentList:
    """The debtor payments of the cases you see, newest recorded first (``page``,
    ``pageSize``)."""
    found = await payment_store.list_payments(
        session=session, principal=principal, offset=page.offset, limit=page.page_size
    )
    return PaymentList(
        page=page_info(page, total=found.total, count=len(found.rows)),
        payments=[payment_item(r.payment, r.case) for r in found.rows],
    )


@router.get(
    "/cases/{case_id}/payments",
    response_model=list[PaymentListItem],
    responses={401: {}, 404: {}},
)
async def list_case_payments(
    case_id: UUID, principal: CurrentPrincipal, session: SessionDep
) -> list[PaymentListItem]:
    """The debtor payments of a case you see, oldest recorded first, not paged (Debitura's
    ``cases_id_payments_get``)."""
    row = await visible_case(session, case_id, principal)
    found = await payment_store.payments_of_case(session=session, case_id=case_id)
    return [payment_item(p, row.case) for p in found]


def payment_item(payment: CasePaymentRow, case: Case) -> PaymentListItem:
    """One payment as Debitura's ``PaymentDto``: the one shape of both lists."""
    return PaymentListItem(
        id=payment.id,
        date_created=payment.recorded_at,
        date_updated=payment.recorded_at,
        date=payment.paid_on,
        amount=payment.amount,
        recipient=Party(payment.paid_to),
        method=None,
        currency=case.currency_code,
        invoice=PaymentInvoice(
            status=CaseStatus(case.status),
            reference=case.creditor_reference,
            invoice_id=case.id,
        ),
    )


# Debitura's SDK asks for ``/Payments`` (its published path); the same list, outside the schema.
router.add_api_route(
    "/Payments",
    list_payments,
    methods=["GET"],
    response_model=PaymentList,
    include_in_schema=False,
)
