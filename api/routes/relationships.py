"""Creditor-partner relationships: the pairs, and their General chat with its attachments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from activities.accounts import relationship_start
from api.chat_posts import (
    SENDER_FIELDS,
    ChatPrincipal,
    file_response,
    message_body,
    message_form,
    message_post,
    post_with_files,
    upload_body,
    upload_form,
)
from api.chat_views import (
    PARTY_OF_ROLE,
    AttachmentView,
    ChatMessageList,
    ChatMessageView,
    OrgView,
    RelationshipList,
    RelationshipPost,
    RelationshipView,
    attachment_view,
    message_list,
)
from api.deps import (
    BlobsDep,
    CurrentPrincipal,
    SessionDep,
    SettingsDep,
    TemporalDep,
)
from api.errors import invalid, not_found
from api.idempotency import idempotent
from api.pagination import PageDep, page_info
from api.uploads import (
    AttachmentOwner,
    Upload,
    store_uploads,
)
from api.workflow_calls import update_with_start_workflow
from domain.chat import (
    ChatMessage,
    PostMessageInput,
    ThreadType,
)
from domain.enums import OrgKind
from store import chat as chat_store
from store.accounts import Principal
from workflows.relationship import RelationshipWorkflow

router = APIRouter(prefix="/relationships", tags=["chat"])


# -- -------------------------------------------------------------------------------
RELATIONSHIP_FORM_FIELDS = ("message",)  # the portal's chat form
API_FORM_FIELDS = (*RELATIONSHIP_FORM_FIELDS, *SENDER_FIELDS)


def _relationship_view(
    record: chat_store.RelationshipRecord, principal: Principal
) -> RelationshipView:
    row = record.relationship
    creditor = OrgView(id=row.creditor_id, name=record.creditor_name)
    partner = OrgView(id=row.partner_id, name=record.partner_name)
    counterpart = {OrgKind.CREDITOR: partner, OrgKind.PARTNER: creditor}.get(principal.role)
    return RelationshipView(
        id=row.id,
        creditor=creditor,
        partner=partner,
        counterpart=counterpart,
        linked_at=row.linked_at,
    )


async def visible_relationship(
    session: AsyncSession, principal: Principal, relationship_id: UUID
) -> chat_store.RelationshipRecord:
    """The pair if the caller may see it (its creditor, its partner, ops); 404 otherwise."""
    record = await chat_store.get_relationship(
        session=session, principal=principal, relationship_id=relationship_id
    )
    if record is None:
        raise not_found("Relationship")
    return record


@router.get("", response_model=RelationshipList)
async def list_relationships(
    principal: CurrentPrincipal, session: SessionDep, page: PageDep
) -> RelationshipList:
    """Your organisation's creditor-partner pairs (ops: all), oldest first. A pair appears when
    the partner first gets one of the creditor's cases."""
    records, total = await chat_store.list_relationships(
        session=session, principal=principal, offset=page.offset, limit=page.page_size
    )
    return RelationshipList(
        relationships=[_relationship_view(r, principal) for r in records],
        page=page_info(page, total=total, count=len(records)),
    )


@router.get("/{relationship_id}", response_model=RelationshipView, responses={404: {}})
async def get_relationship(
    relationship_id: UUID, principal: CurrentPrincipal, session: SessionDep
) -> RelationshipView:
    """One pair, for its creditor, its partner and ops."""
    return _relationship_view(
        await visible_relationship(session, principal, relationship_id), principal
    )


@router.get(
    "/{relationship_id}/chats", response_model=ChatMessageList, responses={401: {}, 404: {}}
)
async def list_relationship_messages(
    relationship_id: UUID, principal: CurrentPrincipal, session: SessionDep, page: PageDep
) -> ChatMessageList:
    """The pair's general chat, oldest first."""
    await visible_relationship(session, principal, relationship_id)
    records, total = await chat_store.list_relationship_messages(
        session=session,
        relationship_id=relationship_id,
        offset=page.offset,
        limit=page.page_size,
    )
    return message_list(records, total, page)


@router.post(
    "/{relationship_id}/chats",
    status_code=201,
    response_model=ChatMessageView,
    responses={403: {}, 404: {}, 413: {}, 415: {}, 422: {}},
    openapi_extra=message_body(RelationshipPost, {}),
)
async def post_relationship_message(
    relationship_id: UUID,
    request: Request,
    principal: ChatPrincipal,
    session: SessionDep,
    client: TemporalDep,
    settings: SettingsDep,
) -> Response:
    """Write in the pair's general chat: JSON ``{message, attachmentIds?}``, or multipart/form-data
    with the same fields and ``files``. The other side gets a NewMessage / ReplyToChat task that
    belongs to no case, and your own open one is solved. Files are stored first and removed again
    if the message is refused."""
    record = await visible_relationship(session, principal, relationship_id)
    form = await message_form(request, settings, API_FORM_FIELDS)
    try:
        post, uploads = await message_post(request, form, RelationshipPost, API_FORM_FIELDS)
        return await send_relationship_message(
            record, post, uploads, request, principal, session, client
        )
    finally:
        if form is not None:
            await form.close()


async def send_relationship_message(
    record: chat_store.RelationshipRecord,
    post: RelationshipPost,
    uploads: Sequence[Upload],
    request: Request,
    principal: Principal,
    session: AsyncSession,
    client: Client,
) -> Response:
    """Post ``post`` with its uploaded files in the pair's general chat, as ``principal`` (the
    command of ``POST /api/relationships/{id}/chats``, for a body already read: the portal's
    chat form reads its own). The caller has checked the role (``ChatPrincipal``) and that the
    pair is visible to it (``visible_relationship``)."""
    pair = record.relationship
    creditor, partner = record.org_refs()

    async def send(user_id: UUID, attachment_ids: list[UUID]) -> ChatMessage:
        # The pair's workflow starts with its first message (docs/decisions/0015).
        start = relationship_start(
            creditor,
            partner,
            linked_at=pair.linked_at,
            task_queue=request.app.state.settings.temporal_task_queue,
        )
        message: ChatMessage = await update_with_start_workflow(
            request,
            principal,
            client,
            start,
            RelationshipWorkflow.post_message,
            PostMessageInput(
                party=PARTY_OF_ROLE[principal.role],
                org_id=principal.org_id,
                user_id=user_id,
                thread_type=ThreadType.GENERAL,
                body=post.message,
                attachment_ids=attachment_ids,
            ),
        )
        return message

    async def execute() -> Response:
        owner = AttachmentOwner.of_relationship(pair.id, pair.partner_id)
        return await post_with_files(request, principal, session, owner, post, uploads, send)

    # Without files, the same fingerprint as before the chat took attachments.
    fingerprint: dict[str, Any] = {
        "relationshipId": str(pair.id),
        **post.model_dump(mode="json", exclude_defaults=True),
    }
    if uploads:
        fingerprint["files"] = [u.fingerprint() for u in uploads]
    return await idempotent(request, principal, fingerprint, execute)


@router.post(
    "/{relationship_id}/attachments",
    status_code=201,
    response_model=AttachmentView,
    responses={403: {}, 404: {}, 413: {}, 415: {}, 422: {}},
    openapi_extra=upload_body({}),
)
async def upload_relationship_attachment(
    relationship_id: UUID,
    request: Request,
    principal: ChatPrincipal,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    """Upload a file to attach to a message of the pair's general chat later
    (``attachmentIds``): multipart/form-data with ``file``. Its creditor and its partner only."""
    record = await visible_relationship(session, principal, relationship_id)
    pair = record.relationship
    form = await upload_form(request, settings, ())
    try:
        if not form.files:
            raise invalid("file", "is required")
        [upload] = form.files

        async def execute() -> Response:
            [attachment] = await store_uploads(
                request,
                principal,
                [upload],
                AttachmentOwner.of_relationship(pair.id, pair.partner_id),
            )
            return JSONResponse(
                attachment_view(attachment).model_dump(mode="json"),
                status_code=201,
                headers={"Location": f"/api/relationships/{pair.id}/attachments/{attachment.id}"},
            )

        fingerprint = {"relationshipId": str(relationship_id), "file": upload.fingerprint()}
        return await idempotent(request, principal, fingerprint, execute)
    finally:
        await form.close()


@router.get(
    "/{relationship_id}/attachments/{attachment_id}",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}, 404: {}},
)
async def download_relationship_attachment(
    relationship_id: UUID,
    attachment_id: UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    blobs: BlobsDep,
) -> StreamingResponse:
    """A file of the pair's general chat, for its creditor, its partner and ops. Anyone else
    gets 404, and so does a file of a case or of another relationship."""
    attachment = await chat_store.downloadable_relationship_attachment(
        session=session,
        principal=principal,
        relationship_id=relationship_id,
        attachment_id=attachment_id,
    )
    if attachment is None:
        raise not_found("Attachment")
    return await file_response(attachment, blobs)
