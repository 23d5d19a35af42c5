"""Posting in a chat: who may write in which thread, the JSON or multipart form of a post, its
attachments (checked, stored, discarded again when the post is refused) and file downloads.
Shared by the case chat (api/routes/chat.py) and the relationship chat
(api/routes/relationships.py); the notes router takes its ``NoteTaker`` from here."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Annotated, Any
from urllib.parse import quote
from uuid import UUID

from fastapi import Depends, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from api.chat_views import (
    MessagePost,
    PostT,
    ThreadRef,
    message_view,
)
from api.deps import (
    CurrentPrincipal,
    require_role,
)
from api.errors import FieldError, Problem, forbidden, invalid, not_found
from api.json_body import malformed_json
from api.responses import json_response
from api.uploads import (
    AttachmentOwner,
    Upload,
    UploadForm,
    discard,
    is_multipart,
    read_form,
    store_uploads,
)
from domain.cases import LEAD_THREAD_QUOTES, CaseDetails, thread_open
from domain.chat import (
    MAX_ATTACHMENTS_PER_MESSAGE,
    MAX_MESSAGE_CHARS,
    ChatMessage,
    ThreadType,
)
from domain.enums import CaseStatus, OrgKind
from domain.transitions import FINISHED
from settings import Settings
from store import cases as case_store
from store import chat as chat_store
from store import directory
from store.accounts import Principal
from store.blobs import BlobStore
from store.models import Attachment, User

logger = logging.getLogger(__name__)

ChatPrincipal = Annotated[Principal, Depends(require_role(OrgKind.CREDITOR, OrgKind.PARTNER))]


async def posted(
    session: AsyncSession,
    principal: Principal,
    message: ChatMessage,
    files: Mapping[UUID, Attachment],
    sender: User | None = None,
) -> Response:
    """201 with a message just posted: the update's result (the workflow answers once the read
    model has it), named by its ``sender`` (None: the caller) and the ``files`` the request
    checked or stored, so no read of the message is needed (``store.chat.posted_message``)."""
    author = sender or (
        User(id=principal.user_id, name=principal.user_name, email=principal.user_email)
        if principal.user_email
        else None
    )
    record = await chat_store.posted_message(
        session=session, message=message, author=author, files=files
    )
    return json_response(message_view(record), status_code=201)


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback name and the exact name per RFC 6266/5987."""
    fallback = filename.encode("ascii", "replace").decode().replace('"', "'").replace("\\", "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


# -- who may write where -------------------------------------------------------------------------
def thread_partner(row: case_store.CaseRow, principal: Principal, thread: ThreadRef) -> UUID:
    """The partner side of the thread the caller writes in (a partner: its own).

    The case workflow has the last word on whether the caller may write there; this only names
    the thread, so attachments can be checked and filed under it.
    """
    if principal.role is OrgKind.PARTNER:
        if thread.partner_id not in (None, principal.org_id):
            raise invalid("partnerId", "a partner writes in its own threads; leave it out")
        return principal.org_id
    if thread.thread_type is ThreadType.INVOICE_CHAT:
        partner_id = row.case.partner_id
        if partner_id is None:
            raise Problem(
                409, "invalid_transition", "The Invoice Chat opens once a partner has the case."
            )
        if thread.partner_id not in (None, partner_id):
            raise invalid("partnerId", "is not the partner working the case")
        return partner_id
    if thread.partner_id is None:
        raise invalid("partnerId", f"is required for a {thread.thread_type.value} message")
    return thread.partner_id


def check_thread_open(
    row: case_store.CaseRow, principal: Principal, thread_type: ThreadType, side: UUID
) -> None:
    """Refuse a file for a thread the caller cannot write in now, so nothing is stored for it.

    The same rule as the case workflow's for messages (``_thread_partner`` and ``_open_thread``
    in workflows/case_chat.py): no thread of a Resolved or Closed case, nor an Invoice Chat
    before a partner has the case (409 ``invalid_transition``); the Invoice Chat only with the
    partner working the case, a lead thread only with a partner whose quote is in a state that
    keeps the thread open (403 ``not_a_party``).
    """
    case = row.case
    if CaseStatus(case.status) in FINISHED:
        raise Problem(
            409,
            "invalid_transition",
            "The case has ended and its chat is closed; write in the relationship chat.",
        )
    if thread_type is ThreadType.INVOICE_CHAT and case.partner_id is None:
        raise Problem(
            409, "invalid_transition", "The Invoice Chat opens once a partner has the case."
        )
    if thread_open(
        status=CaseStatus(case.status),
        case_partner_id=case.partner_id,
        quotes=CaseDetails.model_validate(case.details).quotes,
        thread_type=thread_type,
        partner_id=side,
    ):
        return
    if thread_type is ThreadType.INVOICE_CHAT:
        raise Problem(
            403, "not_a_party", "Only the partner working the case writes in its Invoice Chat."
        )
    allowed = LEAD_THREAD_QUOTES[thread_type]
    raise Problem(
        403,
        "not_a_party",
        f"The {thread_type.value} of this case is open to partners whose quote is "
        f"{' or '.join(status.value.lower() for status in allowed)}.",
    )


async def check_attachments(
    session: AsyncSession, principal: Principal, owner: AttachmentOwner, ids: list[UUID]
) -> dict[UUID, Attachment]:
    """Each id must be a file the caller's organisation uploaded to this case, for this side, or
    to this relationship (``owner``); a file of another case or relationship is refused. The
    files, by id."""
    where = "this thread of the case" if owner.case_id is not None else "this relationship"
    found = await chat_store.attachments_by_id(session=session, ids=set(ids))
    errors = [
        FieldError(f"attachmentIds[{i}]", f"is not a file you uploaded to {where}")
        for i, attachment_id in enumerate(ids)
        if (a := found.get(attachment_id)) is None
        or a.org_id != principal.org_id
        or not owner.owns(a)
    ]
    if errors:
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        raise Problem(422, "validation_failed", f"Invalid input: {summary}", errors=errors)
    return found


# -- who writes --------------------------------------------------------------------------------
# Debitura's ``SendChatRequest`` names the user who writes; the API's forms take them too (the
# portal's do not: there the signed-in user writes).
SENDER_FIELDS = ("userEmail", "userId")
UNKNOWN_SENDER = "is not an active user of your organisation"


def sender_named(post: MessagePost) -> bool:
    return post.user_email is not None or post.user_id is not None


async def sender_of(session: AsyncSession, principal: Principal, post: MessagePost) -> User | None:
    """The user a post names as its writer (``userEmail``, ``userId`` or both): an active user
    of the caller's organisation, else 422 ``unknown_sender`` (another organisation's user, a
    deactivated or unknown one, all alike); both naming different users: 422
    ``sender_mismatch``. None when the post names nobody: the caller writes."""
    if not sender_named(post):
        return None
    by_email = by_id = None
    if post.user_email is not None:
        by_email = await directory.active_user_named(
            session=session, org_id=principal.org_id, email=post.user_email
        )
        if by_email is None:
            raise invalid("userEmail", UNKNOWN_SENDER, code="unknown_sender")
    if post.user_id is not None:
        by_id = await directory.active_user_named(
            session=session, org_id=principal.org_id, user_id=post.user_id
        )
        if by_id is None:
            raise invalid("userId", UNKNOWN_SENDER, code="unknown_sender")
    if by_email is not None and by_id is not None and by_email.id != by_id.id:
        raise invalid(
            "userId", "names another user than userEmail; send one of them", code="sender_mismatch"
        )
    return by_email or by_id


# -- posting a message, with files ---------------------------------------------------------------
MESSAGE_FILE_FIELDS: dict[str, Any] = {
    "attachmentIds": {"type": "array", "items": {"type": "string", "format": "uuid"}},
    "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
}


def message_body(
    model: type[MessagePost], fields: dict[str, Any], rules: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The OpenAPI request body of a chat post: ``model`` as JSON, or multipart with ``fields``
    (text) plus ``attachmentIds`` and ``files``. ``rules`` (JSON Schema keywords) apply to the
    JSON body; forms state them in their fields' descriptions (schemathesis cannot generate a
    form with a file under ``if``/``then``)."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {**model.model_json_schema(by_alias=True), **(rules or {})}
                },
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["message"],
                        "additionalProperties": False,
                        "properties": {
                            "message": {
                                "type": "string",
                                "minLength": 1,
                                "maxLength": MAX_MESSAGE_CHARS,
                            },
                            **fields,
                            "userEmail": {"type": "string", "minLength": 1, "maxLength": 320},
                            "userId": {"type": "string", "format": "uuid"},
                            **MESSAGE_FILE_FIELDS,
                        },
                    }
                },
            },
        }
    }


async def message_form(
    request: Request, settings: Settings, text_fields: Sequence[str]
) -> UploadForm | None:
    """The multipart form of a chat post (the caller closes it), or None for JSON."""
    if not is_multipart(request):
        return None
    return await read_form(
        request,
        settings,
        file_field="files",
        text_fields=[*text_fields, "attachmentIds"],
        max_files=MAX_ATTACHMENTS_PER_MESSAGE,
    )


async def message_post(
    request: Request, form: UploadForm | None, model: type[PostT], text_fields: Sequence[str]
) -> tuple[PostT, list[Upload]]:
    """The post, from the form (``text_fields`` once each, ``attachmentIds`` repeatable) or the
    JSON body, and the files uploaded with it (at most MAX_ATTACHMENTS_PER_MESSAGE in all)."""
    if form is not None:
        data: dict[str, Any] = {
            name: value for name in text_fields if (value := form.value(name)) is not None
        }
        data["attachmentIds"] = form.fields.get("attachmentIds", [])
        post = model.model_validate(data)
    else:
        media = (
            request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        )
        if media != "application/json" and not media.endswith("+json"):
            raise Problem(
                415,
                "unsupported_media_type",
                "Send a message as application/json, or as multipart/form-data with files.",
            )
        # api.guard has checked the JSON (api.json_body) before the route ran.
        try:
            raw = await request.json()
        except ValueError as exc:
            raise malformed_json("it cannot be parsed") from exc
        post = model.model_validate(raw)
    uploads = form.files if form else []
    if len(post.attachment_ids) + len(uploads) > MAX_ATTACHMENTS_PER_MESSAGE:
        raise invalid("files", f"a message has at most {MAX_ATTACHMENTS_PER_MESSAGE} files")
    return post, uploads


async def post_with_files(
    request: Request,
    principal: Principal,
    session: AsyncSession,
    owner: AttachmentOwner,
    post: MessagePost,
    uploads: Sequence[Upload],
    send: Callable[[UUID, list[UUID]], Awaitable[ChatMessage]],
) -> Response:
    """Check the writer the post names (``sender_of``) and the files named by id, store the
    uploaded ones under ``owner``, and post the message as that writer, naming them all
    (``send(user_id, attachment_ids)``, an update of the workflow that owns the thread).

    Refused (a 4xx), the uploaded files go too. On an unknown outcome (503) they stay, since the
    workflow may yet record the message that names them."""
    sender = await sender_of(session, principal, post)
    named = await check_attachments(session, principal, owner, post.attachment_ids)
    stored = await store_uploads(request, principal, uploads, owner)
    try:
        message = await send(
            sender.id if sender else principal.user_id,
            [*post.attachment_ids, *(a.id for a in stored)],
        )
    except Problem as problem:
        if problem.status < 500:
            await discard(request, [a.id for a in stored])
        raise
    # A retry the workflow had already applied answers with the first attempt's message.
    await discard(request, [a.id for a in stored if a.id not in message.attachment_ids])
    files = {**named, **{a.id: a for a in stored}}
    return await posted(session, principal, message, files, sender)


async def file_response(attachment: Attachment, blobs: BlobStore) -> StreamingResponse:
    """The attachment's bytes as a download; 404 if the blob store lost them."""
    chunks = blobs.open(attachment.storage_key)
    try:
        first = await anext(chunks, b"")
    except FileNotFoundError as exc:
        logger.error("attachment %s has no bytes at %s", attachment.id, attachment.storage_key)
        raise not_found("Attachment") from exc

    async def body() -> AsyncIterator[bytes]:
        yield first
        async for chunk in chunks:
            yield chunk

    return StreamingResponse(
        body(),
        media_type=attachment.content_type,
        headers={
            "Content-Disposition": content_disposition(attachment.filename),
            "Content-Length": str(attachment.size),
            "X-Content-Type-Options": "nosniff",
        },
    )


def upload_body(fields: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI request body of an upload: multipart with ``file`` and ``fields``."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "additionalProperties": False,
                        "properties": {"file": {"type": "string", "format": "binary"}, **fields},
                    }
                }
            },
        }
    }


async def upload_form(
    request: Request, settings: Settings, text_fields: Sequence[str]
) -> UploadForm:
    """The multipart form of an upload (one ``file``); the caller closes it."""
    if not is_multipart(request):
        raise Problem(
            415, "unsupported_media_type", "Upload the file as multipart/form-data field 'file'."
        )
    return await read_form(
        request, settings, file_field="file", text_fields=text_fields, max_files=1
    )


async def _note_taker(principal: CurrentPrincipal) -> Principal:
    if principal.role is not OrgKind.PARTNER:
        raise forbidden(
            "Only the partner working the case logs notes and calls; "
            f"{principal.role.value} users read them with GET /api/cases/{{caseId}}/notes."
        )
    return principal


NoteTaker = Annotated[Principal, Depends(_note_taker)]
