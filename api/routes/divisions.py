"""A creditor's divisions (Debitura's ``DivisionsApi``): creditors manage their own, ops read
every creditor's, partners none. A case names one with ``creditorDivisionId``."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response

from api.deps import CreditorPrincipal, SessionDep, require_role
from api.errors import Problem, not_found
from api.idempotency import derived_id, idempotent, key_reused
from api.pagination import PageDep, PageInfo, page_info
from api.responses import json_response
from domain.base import ApiModel
from domain.divisions import (
    COUNTRY_NAMES,
    CreateDivisionRequest,
    Division,
    DivisionCountry,
    UpdateDivisionRequest,
)
from domain.enums import OrgKind
from store import divisions as division_store
from store.accounts import Principal
from store.db import insert_once
from store.models import Division as DivisionRow

router = APIRouter(prefix="/divisions", tags=["divisions"])

# Creditors and ops read divisions; a partner has none and reads none.
ReaderPrincipal = Annotated[
    Principal,
    Depends(
        require_role(
            OrgKind.CREDITOR,
            OrgKind.OPS,
            detail="Divisions belong to creditors: only creditor and ops users read them.",
        )
    ),
]


class DivisionList(ApiModel):
    """Debitura's ``DivisionListDto``."""

    page: PageInfo
    divisions: list[Division]


def division_view(row: DivisionRow) -> Division:
    return Division(
        id=row.id,
        company_name=row.company_name,
        registration_number=row.registration_number,
        address=row.address,
        zip_code=row.zip_code,
        state=row.state,
        city=row.city,
        country=DivisionCountry(
            id=None,
            name=COUNTRY_NAMES.get(row.country_code, row.country_code),
            alpha2=row.country_code,
        ),
        office_email=row.office_email,
        office_phone=row.office_phone,
        is_archived=row.archived_at is not None,
        created_utc=row.created_at,
        updated_utc=row.updated_at,
    )


def _division_in_use() -> Problem:
    return Problem(
        409,
        "division_in_use",
        "A case was submitted for this division: it cannot be deleted. Archive it instead "
        "(POST /api/divisions/{id}/archive) to offer it to no new case.",
    )


@router.get("", response_model=DivisionList, responses={401: {}, 403: {}})
async def list_divisions(
    principal: ReaderPrincipal,
    session: SessionDep,
    page: PageDep,
    include_archived: Annotated[
        bool,
        Query(
            alias="includeArchived",
            description="Also list archived divisions (by default only active ones).",
        ),
    ] = False,
) -> DivisionList:
    """Your organisation's divisions (ops: every creditor's), oldest first, paged with ``page``
    and ``pageSize``; archived ones only with ``includeArchived=true``."""
    found = await division_store.list_divisions(
        session=session,
        principal=principal,
        include_archived=include_archived,
        offset=page.offset,
        limit=page.page_size,
    )
    return DivisionList(
        page=page_info(page, total=found.total, count=len(found.rows)),
        divisions=[division_view(row) for row in found.rows],
    )


@router.post("", status_code=201, response_model=Division, responses={401: {}, 403: {}, 422: {}})
async def create_division(
    body: CreateDivisionRequest, request: Request, principal: CreditorPrincipal
) -> Response:
    """Add a division to your organisation (creditors only); cases name it with
    ``creditorDivisionId``."""

    async def execute() -> Response:
        division, _ = await insert_once(
            request.app.state.sessions,
            division_store.new_division(
                # From the key, so a retry whose first attempt was committed but never answered
                # finds that division instead of adding a second one.
                division_id=derived_id(request, principal, "division"),
                creditor_id=principal.org_id,
                details=body,
                now=dt.datetime.now(dt.UTC),
            ),
        )
        if division.creditor_id != principal.org_id or not division_store.same_details(
            division, body
        ):
            raise key_reused()
        return json_response(
            division_view(division),
            status_code=201,
            headers={"Location": f"/api/divisions/{division.id}"},
        )

    return await idempotent(request, principal, body.model_dump(mode="json"), execute)


@router.get("/{division_id}", response_model=Division, responses={401: {}, 403: {}, 404: {}})
async def get_division(
    division_id: UUID, principal: ReaderPrincipal, session: SessionDep
) -> Division:
    """One of your divisions (ops: any creditor's); another organisation's is 404."""
    row = await division_store.get_division(
        session=session, principal=principal, division_id=division_id
    )
    if row is None:
        raise not_found("Division")
    return division_view(row)


@router.put(
    "/{division_id}", response_model=Division, responses={401: {}, 403: {}, 404: {}, 422: {}}
)
async def update_division(
    division_id: UUID,
    body: UpdateDivisionRequest,
    request: Request,
    principal: CreditorPrincipal,
) -> Response:
    """Replace the details of one of your divisions (every field: one left out is cleared).
    The cases that name it show its new name."""

    async def execute() -> Response:
        row = await division_store.replace(
            sessions=request.app.state.sessions,
            creditor_id=principal.org_id,
            division_id=division_id,
            details=body,
            now=dt.datetime.now(dt.UTC),
        )
        if row is None:
            raise not_found("Division")
        return json_response(division_view(row))

    return await idempotent(
        request,
        principal,
        {"divisionId": str(division_id), **body.model_dump(mode="json")},
        execute,
    )


@router.delete("/{division_id}", status_code=204, responses={401: {}, 403: {}, 404: {}, 409: {}})
async def delete_division(
    division_id: UUID, request: Request, principal: CreditorPrincipal
) -> Response:
    """Delete one of your divisions, which no case may name: once a case was submitted for
    it, 409 ``division_in_use`` (archive it instead)."""
    outcome = await division_store.delete_division(
        sessions=request.app.state.sessions, creditor_id=principal.org_id, division_id=division_id
    )
    if outcome is division_store.Deletion.NOT_FOUND:
        raise not_found("Division")
    if outcome is division_store.Deletion.IN_USE:
        raise _division_in_use()
    return Response(status_code=204)


async def _archive(division_id: UUID, request: Request, principal: Principal) -> Response:
    async def execute() -> Response:
        row = await division_store.archive(
            sessions=request.app.state.sessions,
            creditor_id=principal.org_id,
            division_id=division_id,
            now=dt.datetime.now(dt.UTC),
        )
        if row is None:
            raise not_found("Division")
        return json_response(division_view(row))

    return await idempotent(request, principal, {"archive": str(division_id)}, execute)


@router.post(
    "/{division_id}/archive", response_model=Division, responses={401: {}, 403: {}, 404: {}}
)
async def archive_division(
    division_id: UUID, request: Request, principal: CreditorPrincipal
) -> Response:
    """Archive one of your divisions: no new case may name it, the cases that do keep it.
    Archiving an archived division changes nothing."""
    return await _archive(division_id, request, principal)


# Debitura's SDK also calls ``POST /divisions/{id}:archive`` (``divisions_idarchive_post``).
@router.post(
    "/{division_id}:archive",
    response_model=Division,
    responses={401: {}, 403: {}, 404: {}},
    include_in_schema=False,
)
async def archive_division_colon(
    division_id: UUID, request: Request, principal: CreditorPrincipal
) -> Response:
    return await _archive(division_id, request, principal)
