"""``GET /api/cases/{id}/files``: the files of a case (Debitura's ``CaseFileDto`` list). caseloop's
case files are its chat attachments (``POST /api/cases/{id}/attachments``)."""

from __future__ import annotations

import datetime as dt
from typing import Literal
from uuid import UUID

from fastapi import APIRouter

from api.deps import CurrentPrincipal, SessionDep, visible_case
from domain.base import ApiModel
from store import case_files

router = APIRouter(prefix="/cases", tags=["chat"])


class CaseFileView(ApiModel):
    """Debitura's ``CaseFileDto``: ``entityType`` ``Chat`` and ``entityId`` the message the file
    was sent with (null while it is uploaded but not yet sent), ``url`` where to download it;
    caseloop's ``contentType`` and ``size`` beside them. A file never changes: ``dateUpdated``
    is ``dateCreated``; caseloop keeps no description or document type (null)."""

    id: UUID
    date_created: dt.datetime
    date_updated: dt.datetime
    case_id: UUID
    entity_type: Literal["Chat"]
    entity_id: str | None
    file_name: str
    url: str
    description: None
    document_type: None
    content_type: str
    size: int


@router.get("/{case_id}/files", response_model=list[CaseFileView], responses={401: {}, 404: {}})
async def list_case_files(
    case_id: UUID, principal: CurrentPrincipal, session: SessionDep
) -> list[CaseFileView]:
    """The case's files you may download, oldest first: all of them for its creditor and ops,
    a partner those of its own threads (as ``GET /api/cases/{id}/attachments/{fileId}``)."""
    await visible_case(session, case_id, principal)
    found = await case_files.case_files(session=session, principal=principal, case_id=case_id)
    return [
        CaseFileView(
            id=f.attachment.id,
            date_created=f.attachment.created_at,
            date_updated=f.attachment.created_at,
            case_id=case_id,
            entity_type="Chat",
            entity_id=f.message_id,
            file_name=f.attachment.filename,
            url=f"/api/cases/{case_id}/attachments/{f.attachment.id}",
            description=None,
            document_type=None,
            content_type=f.attachment.content_type,
            size=f.attachment.size,
        )
        for f in found
    ]
