"""A case's notes and logged calls, and its timeline (messages, notes and status changes).

Plain records of the read model; no workflow takes part."""

from __future__ import annotations

import datetime as dt
from typing import Literal
from uuid import UUID

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from api.chat_posts import (
    NoteTaker,
)
from api.chat_views import (
    CallEntry,
    NoteEntry,
    NoteList,
    NoteView,
    Timeline,
    note_fields,
    timeline_item,
)
from api.deps import (
    CurrentPrincipal,
    SessionDep,
    visible_case,
)
from api.errors import Problem
from api.idempotency import derived_id, idempotent
from api.pagination import PageDep, page_info
from domain.enums import CaseStatus, SubStatus
from domain.lifecycle import current_stage
from store import chat as chat_store
from store.accounts import Principal
from store.models import CaseNote

router = APIRouter(prefix="/cases", tags=["chat"])


# -- notes and calls -----------------------------------------------------------------------------
async def _log(
    request: Request,
    principal: Principal,
    session: AsyncSession,
    case_id: UUID,
    body: NoteEntry | CallEntry,
) -> Response:
    """Record a note or call of the partner working the case, once per Idempotency-Key."""
    kind: Literal["note", "call"] = "call" if isinstance(body, CallEntry) else "note"

    async def execute() -> Response:
        row = await visible_case(session, case_id, principal)
        if row.case.partner_id != principal.org_id:
            raise Problem(
                403, "not_a_party", "Only the partner working the case logs notes and calls on it."
            )
        note = CaseNote(
            # From the key, so a retry after a lost response finds the first note.
            id=derived_id(request, principal, "note"),
            case_id=case_id,
            kind=kind,
            org_id=principal.org_id,
            user_id=principal.user_id,
            body=body.note,
            call_duration_seconds=body.duration_seconds if isinstance(body, CallEntry) else None,
            call_outcome=body.outcome.value if isinstance(body, CallEntry) else None,
            created_at=dt.datetime.now(dt.UTC),
        )
        saved, _ = await chat_store.add_note(sessions=request.app.state.sessions, note=note)
        record = await chat_store.get_note(session=session, note_id=saved.id)
        assert record is not None
        return JSONResponse(NoteView(**note_fields(record)).model_dump(mode="json"), 201)

    fingerprint = {"caseId": str(case_id), "type": kind, **body.model_dump(mode="json")}
    return await idempotent(request, principal, fingerprint, execute)


@router.post(
    "/{case_id}/notes",
    status_code=201,
    response_model=NoteView,
    responses={403: {}, 404: {}, 422: {}},
)
async def log_note(
    case_id: UUID, body: NoteEntry, request: Request, principal: NoteTaker, session: SessionDep
) -> Response:
    """The partner working the case logs a note (creditors and ops: 403; they read notes)."""
    return await _log(request, principal, session, case_id, body)


@router.post(
    "/{case_id}/calls",
    status_code=201,
    response_model=NoteView,
    responses={403: {}, 404: {}, 422: {}},
)
async def log_call(
    case_id: UUID, body: CallEntry, request: Request, principal: NoteTaker, session: SessionDep
) -> Response:
    """The partner working the case logs a phone call: ``durationSeconds`` (0 to 86400),
    ``outcome`` and an optional ``note``."""
    return await _log(request, principal, session, case_id, body)


@router.get("/{case_id}/notes", response_model=NoteList, responses={401: {}, 404: {}})
async def list_notes(
    case_id: UUID, principal: CurrentPrincipal, session: SessionDep, page: PageDep
) -> NoteList:
    """The case's notes and calls, oldest first: all of them for the creditor and ops, those
    its own organisation logged for a partner."""
    await visible_case(session, case_id, principal)
    records, total = await chat_store.list_notes(
        session=session,
        principal=principal,
        case_id=case_id,
        offset=page.offset,
        limit=page.page_size,
    )
    return NoteList(
        notes=[NoteView(**note_fields(r)) for r in records],
        page=page_info(page, total=total, count=len(records)),
    )


@router.get("/{case_id}/timeline", response_model=Timeline, responses={401: {}, 404: {}})
async def get_timeline(case_id: UUID, principal: CurrentPrincipal, session: SessionDep) -> Timeline:
    """Everything that happened on the case, oldest first and whole (as Debitura's): messages
    (of the threads you may read), notes, calls and status changes, each with Debitura's
    ``date``, ``type``, ``title``, ``description`` and ``actor``; and the collection stage."""
    row = await visible_case(session, case_id, principal)
    entries, _ = await chat_store.timeline(session=session, principal=principal, case_id=case_id)
    case = row.case
    status = CaseStatus(case.status)
    sub_status = SubStatus(case.sub_status) if case.sub_status else None
    return Timeline(
        items=[timeline_item(e) for e in entries],
        current_engagement_phase=current_stage(status, sub_status),
    )
