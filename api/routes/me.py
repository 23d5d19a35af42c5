"""``GET /api/me``: who the key belongs to (Debitura's ``MeApi``)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter

from api.deps import CurrentPrincipal, SessionDep
from api.errors import not_found
from domain.base import ApiModel
from domain.enums import OrgKind
from store import directory

router = APIRouter(tags=["me"])


class MeUser(ApiModel):
    id: UUID
    name: str | None
    email: str


class MeView(ApiModel):
    """Debitura's ``CreditorMeApiDTO`` names for what caseloop keeps of an organisation (``id``,
    ``companyName``, ``country``), and caseloop's: the organisation's ``role`` and
    ``timezone`` and the ``user`` whose key made the call. Partners and ops get it too."""

    id: UUID
    company_name: str
    country: str
    role: OrgKind
    timezone: str
    user: MeUser


@router.get("/me", response_model=MeView, responses={401: {}})
async def me(principal: CurrentPrincipal, session: SessionDep) -> MeView:
    """The caller's organisation and user."""
    org = await directory.organisation(session=session, org_id=principal.org_id)
    if org is None:  # the key's lookup found it a moment ago; deleted since
        raise not_found("Organisation")
    return MeView(
        id=org.id,
        company_name=org.name,
        country=org.country,
        role=principal.role,
        timezone=org.timezone,
        user=MeUser(id=principal.user_id, name=principal.user_name, email=principal.user_email),
    )
