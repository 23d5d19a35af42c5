"""``GET /api/ops/cases/{caseId}/explain``: a case explained for ops (``ops.explain``), the same
explanation ``caseloop case explain`` prints. Anyone else gets 404, as for a case they do not
see: the route does not tell them that it exists."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request

from api.deps import CurrentPrincipal, TemporalDep
from api.errors import not_found
from domain.enums import OrgKind
from ops.explain import CaseExplanation, explain_case

router = APIRouter(prefix="/ops/cases", tags=["ops"])


@router.get("/{case_id}/explain", response_model=CaseExplanation)
async def explain(
    case_id: UUID, request: Request, principal: CurrentPrincipal, client: TemporalDep
) -> CaseExplanation:
    """The case's status, open tasks with their deadlines and who owes each, pending timers,
    the last history events, projection lag and anything failing, in plain words. Ops only."""
    if principal.role is not OrgKind.OPS:
        raise not_found("Case")
    explanation = await explain_case(client, request.app.state.sessions, case_id)
    if explanation is None:
        raise not_found("Case")
    return explanation
