"""``GET /api/users``: the caller's team (Debitura's ``UsersApi``); ``PATCH /api/users/me``: the
caller's own settings (their time zone: the morning of their daily summary)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Request, Response
from pydantic import Field, field_validator
from sqlalchemy import update

from api.deps import CurrentPrincipal, SessionDep
from api.errors import not_found
from api.idempotency import idempotent
from api.pagination import PageDep, PageInfo, page_info
from api.responses import json_response
from domain.base import ApiModel
from store import directory
from store.db import transaction
from store.models import Organisation, User

router = APIRouter(prefix="/users", tags=["users"])


class UserView(ApiModel):
    """Debitura's ``CollectionPartnerUserDto``: ``name`` is null for a user who has none."""

    id: UUID
    name: str | None
    email: str


class UserList(ApiModel):
    """Debitura's ``UserListDto``."""

    page: PageInfo
    users: list[UserView]


@router.get("", response_model=UserList, responses={401: {}})
async def list_users(principal: CurrentPrincipal, session: SessionDep, page: PageDep) -> UserList:
    """The active users of the caller's organisation, oldest first (``page``, ``pageSize``)."""
    found = await directory.list_users(
        session=session, org_id=principal.org_id, offset=page.offset, limit=page.page_size
    )
    return UserList(
        page=page_info(page, total=found.total, count=len(found.users)),
        users=[UserView(id=u.id, name=u.name, email=u.email) for u in found.users],
    )


# An IANA time zone name (``Europe/Copenhagen``); the schema says so with the format
# ``time-zone``, and the validator refuses any name ``zoneinfo`` does not know.
TimeZoneName = Annotated[str, Field(max_length=64, json_schema_extra={"format": "time-zone"})]


class UserSettings(ApiModel):
    """``timezone``: an IANA time zone name (``Europe/Copenhagen``), or null for the
    organisation's."""

    timezone: TimeZoneName | None

    @field_validator("timezone")
    @classmethod
    def _iana(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError("not an IANA time zone name") from None
        return value


class MySettings(ApiModel):
    id: UUID
    # The user's own time zone (null: none), and the one that applies (else the organisation's).
    timezone: str | None
    effective_timezone: str


@router.patch("/me", response_model=MySettings, responses={401: {}, 422: {}})
async def update_me(body: UserSettings, principal: CurrentPrincipal, request: Request) -> Response:
    """Set the caller's own time zone (null: their organisation's again). An
    ``Idempotency-Key`` replays the first answer, as on every write."""

    async def execute() -> Response:
        async with transaction(request.app.state.sessions) as session:
            await session.execute(
                update(User).where(User.id == principal.user_id).values(timezone=body.timezone)
            )
            org = await session.get(Organisation, principal.org_id)
        if org is None:
            raise not_found("Organisation")
        return json_response(
            MySettings(
                id=principal.user_id,
                timezone=body.timezone,
                effective_timezone=body.timezone or org.timezone,
            )
        )

    # The user in the fingerprint: a colleague reusing the key gets 422, never this answer.
    fingerprint = {"userId": str(principal.user_id), **body.model_dump(mode="json")}
    return await idempotent(request, principal, fingerprint, execute)
