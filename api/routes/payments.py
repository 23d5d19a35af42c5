"""``GET /api/payments``: the debtor payments of every case you see (Debitura's
``PaymentsApi.payments_get``). A case's own payments, with commission and totals, are
``GET /api/cases/{id}/payments`` (``case_work``)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from uuid import UUID

from fastapi import APIRouter

from api.deps import CurrentPrincipal, SessionDep
from api.pagination import PageDep, PageInfo, page_info
from domain.base import ApiModel
from domain.enums import CaseStatus, Party
from store import payments as payment_store

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
        payments=[
            PaymentListItem(
                id=r.payment.id,
                date_created=r.payment.recorded_at,
                date_updated=r.payment.recorded_at,
                date=r.payment.paid_on,
                amount=r.payment.amount,
                recipient=Party(r.payment.paid_to),
                method=None,
                currency=r.case.currency_code,
                invoice=PaymentInvoice(
                    status=CaseStatus(r.case.status),
                    reference=r.case.creditor_reference,
                    invoice_id=r.case.id,
                ),
            )
            for r in found.rows
        ],
    )


# Debitura's SDK asks for ``/Payments`` (its published path); the same list, outside the schema.
router.add_api_route(
    "/Payments",
    list_payments,
    methods=["GET"],
    response_model=PaymentList,
    include_in_schema=False,
)
