"""A case by reference: ``GET /api/cases/by-creditor-reference/{ref}`` (the creditor's own
reference) and ``GET /api/cases/case-reference/{ref}`` (caseloop's case number), as Debitura's
``CasesApi`` reads them. Included before ``cases`` (api/app.py), so a reference such as
``history`` is never read as ``/api/cases/{id}/history``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable
from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import CurrentPrincipal, SessionDep
from api.errors import Problem, not_found
from api.routes.cases import case_view
from domain.cases import CaseView
from store import case_references
from store.cases import CaseRow

router = APIRouter(prefix="/cases", tags=["cases"])

Reference = Annotated[str, Path(min_length=1, max_length=100)]


async def _found(lookup: Awaitable[CaseRow | None]) -> CaseView:
    try:
        row = await lookup
    except case_references.AmbiguousReference:
        raise Problem(
            409,
            "ambiguous_reference",
            "More than one case you may see holds this reference; read it by its id.",
        ) from None
    if row is None:
        raise not_found("Case")
    return case_view(row, dt.datetime.now(dt.UTC))


@router.get(
    "/by-creditor-reference/{creditor_reference:path}",
    response_model=CaseView,
    responses={401: {}, 404: {}, 409: {}},
)
async def case_by_creditor_reference(
    creditor_reference: Reference, principal: CurrentPrincipal, session: SessionDep
) -> CaseView:
    """The case holding the creditor's own reference (exact match; it may hold ``/``, sent as
    is or as ``%2F``). Unique among a creditor's cases; a partner or ops seeing two creditors' cases with the same reference gets 409."""
    return await _found(
        case_references.by_creditor_reference(
            session=session, principal=principal, reference=creditor_reference
        )
    )


@router.get(
    "/case-reference/{case_reference}",
    response_model=CaseView,
    responses={401: {}, 404: {}, 409: {}},
)
async def case_by_case_reference(
    case_reference: Reference, principal: CurrentPrincipal, session: SessionDep
) -> CaseView:
    """The case with this case number (``caseNumber``, e.g. ``CL-2026-000042``; any letter
    case)."""
    return await _found(
        case_references.by_case_number(session=session, principal=principal, number=case_reference)
    )
