"""``GET /api/users``: the caller's team (Debitura's ``UsersApi``)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter

from api.deps import CurrentPrincipal, SessionDep
from api.pagination import PageDep, PageInfo, page_info
from domain.base import ApiModel
from store import directory

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
