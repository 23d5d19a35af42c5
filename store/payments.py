"""Debtor payments across the cases a caller sees (``GET /api/payments``) and of one case
(``GET /api/cases/{id}/payments``), from ``case_payments`` (written by the projection with each
case row)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.accounts import Principal
from store.cases import visible_to
from store.models import Case, CasePaymentRow


@dataclass(frozen=True)
class PaymentOfCase:
    payment: CasePaymentRow
    case: Case


@dataclass(frozen=True)
class PaymentPage:
    total: int
    rows: list[PaymentOfCase]


async def list_payments(
    *, session: AsyncSession, principal: Principal, offset: int, limit: int
) -> PaymentPage:
    """The payments of every case the caller sees (the case-visibility rule, ``visible_to``),
    newest recorded first, then by case and id: a stable order for paging."""
    visible = select(CasePaymentRow, Case).join(Case, Case.id == CasePaymentRow.case_id)
    visible = visible.where(visible_to(principal))
    total = await session.scalar(select(func.count()).select_from(visible.subquery()))
    found = await session.execute(
        visible.order_by(
            CasePaymentRow.recorded_at.desc(), CasePaymentRow.case_id, CasePaymentRow.id
        )
        .offset(offset)
        .limit(limit)
    )
    return PaymentPage(total or 0, [PaymentOfCase(p, c) for p, c in found.all()])


async def payments_of_case(*, session: AsyncSession, case_id: uuid.UUID) -> list[CasePaymentRow]:
    """The payments of one case (the caller has been allowed to see it), oldest recorded first."""
    found = await session.scalars(
        select(CasePaymentRow)
        .where(CasePaymentRow.case_id == case_id)
        .order_by(CasePaymentRow.recorded_at, CasePaymentRow.id)
    )
    return list(found)
