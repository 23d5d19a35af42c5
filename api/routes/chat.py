"""The communication center of a case: its chats with attachments. Notes, calls and the timeline
are ``api/routes/case_notes.py``; the general chat of each creditor-partner relationship is
``api/routes/relationships.py``. Both share the message and upload handling of
``api/chat_posts.py`` and the views of ``api/chat_views.py``.

Posting a message is an update to the workflow that owns the thread (the case's, or the pair's
``RelationshipWorkflow``), which raises and solves the chat tasks; it answers with the message
once the read model has it, and the API answers from that result (``api.chat_posts.posted``).
Attachment bytes go to the blob store and never into a workflow: a message carries only attachment
ids.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api.chat_posts import (
    SENDER_FIELDS,
    ChatPrincipal,
    check_thread_open,
    file_response,
    message_body,
    message_form,
    message_post,
    post_with_files,
    sender_named,
    thread_partner,
    upload_body,
    upload_form,
)
from api.chat_views import (
    CASE_THREADS,
    PARTY_OF_ROLE,
    AttachmentView,
    ChatMessageView,
    ChatPost,
    ThreadRef,
    attachment_view,
    message_view,
)
from api.deps import (
    BlobsDep,
    CurrentPrincipal,
    SessionDep,
    SettingsDep,
    TemporalDep,
    visible_case,
)
from api.errors import invalid, not_found
from api.idempotency import idempotent, idempotent_after
from api.uploads import (
    AttachmentOwner,
    Upload,
    store_uploads,
)
from api.workflow_calls import update_workflow
from domain.chat import (
    ChatMessage,
    PostMessageInput,
    ThreadType,
)
from domain.ids import case_workflow_id
from store import chat as chat_store
from store.accounts import Principal
from store.cases import CaseRow
from workflows.case import CaseWorkflow

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/cases", tags=["chat"])


# -- case chat -----------------------------------------------------------------------------------
CHAT_FORM_FIELDS = ("message", "threadType", "partnerId")  # the portal's chat form
API_FORM_FIELDS = (*CHAT_FORM_FIELDS, *SENDER_FIELDS)
SENDER_KEYS = {"user_email", "user_id"}
THREAD_FIELDS: dict[str, Any] = {
    "threadType": {"type": "string", "enum": CASE_THREADS},
    "partnerId": {
        "type": "string",
        "format": "uuid",
        "description": "Required from a creditor for a Lead Chat or Invoice Questions Chat.",
    },
}
LEAD_THREADS = [t for t in CASE_THREADS if t != ThreadType.INVOICE_CHAT.value]
# A lead thread is one per partner: a creditor names the partner (``thread_partner``; a
# partner may send its own id, or leave it out).
LEAD_THREAD_NEEDS_PARTNER: dict[str, Any] = {
    "if": {
        "required": ["threadType"],
        "properties": {"threadType": {"enum": LEAD_THREADS}},
    },
    "then": {"required": ["partnerId"], "properties": {"partnerId": {"type": "string"}}},
}


@router.post(
    "/{case_id}/chats",
    status_code=201,
    response_model=ChatMessageView,
    responses={403: {}, 404: {}, 409: {}, 413: {}, 415: {}, 422: {}},
    openapi_extra=message_body(ChatPost, THREAD_FIELDS, LEAD_THREAD_NEEDS_PARTNER),
)
async def post_case_message(
    case_id: UUID,
    request: Request,
    principal: ChatPrincipal,
    session: SessionDep,
    client: TemporalDep,
    settings: SettingsDep,
) -> Response:
    """Write in one of the case's threads (default Invoice Chat): JSON ``{message, threadType?,
    partnerId?, attachmentIds?}``, or multipart/form-data with the same fields and ``files``.

    The other party gets a NewMessage / ReplyToChat task (one per thread), your own open one in
    the thread is solved, and a creditor writing in the Invoice Chat of a case On Hold waiting
    for the creditor provides the information: the case resumes. Files are stored first and
    removed again if the message is refused."""
    form = await message_form(request, settings, API_FORM_FIELDS)
    try:
        post, uploads = await message_post(request, form, ChatPost, API_FORM_FIELDS)
        return await send_case_message(case_id, post, uploads, request, principal, session, client)
    finally:
        if form is not None:
            await form.close()


async def send_case_message(
    case_id: UUID,
    post: ChatPost,
    uploads: Sequence[Upload],
    request: Request,
    principal: Principal,
    session: AsyncSession,
    client: Client,
) -> Response:
    """Post ``post`` with its uploaded files in the case's thread, as ``principal`` (the
    command of ``POST /api/cases/{id}/chats``, for a body already read: the portal's chat form
    reads its own). The caller has checked the role (``ChatPrincipal``)."""

    async def execute(row: CaseRow) -> Response:
        side = thread_partner(row, principal, post)

        async def send(user_id: UUID, attachment_ids: list[UUID]) -> ChatMessage:
            message: ChatMessage = await update_workflow(
                request,
                principal,
                client,
                case_workflow_id(case_id),
                CaseWorkflow.post_message,
                PostMessageInput(
                    party=PARTY_OF_ROLE[principal.role],
                    org_id=principal.org_id,
                    user_id=user_id,
                    thread_type=post.thread_type,
                    partner_id=side,
                    body=post.message,
                    attachment_ids=attachment_ids,
                ),
            )
            return message

        if uploads:  # nothing is stored for a thread the caller cannot write in
            check_thread_open(row, principal, post.thread_type, side)
        owner = AttachmentOwner.of_case(case_id, side)
        return await post_with_files(request, principal, session, owner, post, uploads, send)

    # Naming no writer, the same fingerprint as before posts could name one.
    fingerprint = {
        "caseId": str(case_id),
        **post.model_dump(mode="json", exclude=set() if sender_named(post) else SENDER_KEYS),
        "files": [u.fingerprint() for u in uploads],
    }
    return await idempotent_after(
        request,
        principal,
        fingerprint,
        lambda: visible_case(session, case_id, principal),
        execute,
    )


@router.get("/{case_id}/chats", response_model=list[ChatMessageView], responses={401: {}, 404: {}})
async def list_case_messages(
    case_id: UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    thread_type: Annotated[ThreadType | None, Query(alias="threadType")] = None,
    partner_id: Annotated[UUID | None, Query(alias="partnerId")] = None,
) -> list[ChatMessageView]:
    """Every message of the case, oldest first, not paged (as Debitura's): every thread for
    the creditor and ops, its own side's threads for a partner. A thread nobody wrote in yet
    lists nothing."""
    await visible_case(session, case_id, principal)
    records, _ = await chat_store.list_case_messages(
        session=session,
        principal=principal,
        case_id=case_id,
        thread_type=thread_type,
        partner_id=partner_id,
    )
    return [message_view(r) for r in records]


# -- attachments ---------------------------------------------------------------------------------
@router.post(
    "/{case_id}/attachments",
    status_code=201,
    response_model=AttachmentView,
    responses={403: {}, 404: {}, 409: {}, 413: {}, 415: {}, 422: {}},
    openapi_extra=upload_body(THREAD_FIELDS),
)
async def upload_attachment(
    case_id: UUID,
    request: Request,
    principal: ChatPrincipal,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    """Upload a file to attach to a message later (``attachmentIds``): multipart/form-data with
    ``file`` and, for a creditor, the thread it is for (``threadType``, ``partnerId``)."""
    form = await upload_form(request, settings, ("threadType", "partnerId"))
    try:
        if not form.files:
            raise invalid("file", "is required")
        [upload] = form.files
        thread = ThreadRef.model_validate(
            {n: v for n in ("threadType", "partnerId") if (v := form.value(n)) is not None}
        )

        async def execute() -> Response:
            row = await visible_case(session, case_id, principal)
            side = thread_partner(row, principal, thread)
            check_thread_open(row, principal, thread.thread_type, side)
            [attachment] = await store_uploads(
                request, principal, [upload], AttachmentOwner.of_case(case_id, side)
            )
            return JSONResponse(
                attachment_view(attachment).model_dump(mode="json"),
                status_code=201,
                headers={"Location": f"/api/cases/{case_id}/attachments/{attachment.id}"},
            )

        fingerprint = {
            "caseId": str(case_id),
            **thread.model_dump(mode="json"),
            "file": upload.fingerprint(),
        }
        return await idempotent(request, principal, fingerprint, execute)
    finally:
        await form.close()


@router.get(
    "/{case_id}/attachments/{attachment_id}",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}, 404: {}},
)
async def download_attachment(
    case_id: UUID,
    attachment_id: UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    blobs: BlobsDep,
) -> StreamingResponse:
    """The file, for the parties of its thread: ops, the case's creditor, and the partner it was
    shared with while that partner sees the case. Anyone else gets 404, and so does a file of a
    relationship chat."""
    attachment = await chat_store.downloadable_attachment(
        session=session, principal=principal, case_id=case_id, attachment_id=attachment_id
    )
    if attachment is None:
        raise not_found("Attachment")
    return await file_response(attachment, blobs)
