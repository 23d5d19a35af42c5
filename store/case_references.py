"""A case found by a reference instead of its id: the creditor's own reference or caseloop's
case number (``GET /api/cases/by-creditor-reference/{ref}``, ``/case-reference/{ref}``)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.accounts import Principal
from store.cases import CaseRow, case_rows, visible_to
from store.models import Case


class AmbiguousReference(Exception):
    """More than one case the caller sees holds the reference (a partner's or ops' view of
    several creditors' cases: a creditor's own references are unique)."""


async def _one(
    session: AsyncSession, principal: Principal, match: ColumnElement[bool]
) -> CaseRow | None:
    found = list(await session.scalars(select(Case).where(match, visible_to(principal)).limit(2)))
    if len(found) > 1:
        raise AmbiguousReference
    return (await case_rows(session, found))[0] if found else None


async def by_creditor_reference(
    *, session: AsyncSession, principal: Principal, reference: str
) -> CaseRow | None:
    """The visible case holding the creditor's ``reference`` (exact match); None if none."""
    return await _one(session, principal, Case.creditor_reference == reference)


async def by_case_number(
    *, session: AsyncSession, principal: Principal, number: str
) -> CaseRow | None:
    """The visible case numbered ``number`` (case numbers are upper case: any case matches)."""
    return await _one(session, principal, Case.case_number == number.upper())
