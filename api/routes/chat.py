"""The communication center of a case: its chats with attachments. Notes, calls and the timeline
are ``api/routes/case_notes.py``; the general chat of each creditor-partner relationship is
``api/routes/relationships.py``, which shares the message and upload handling here.

Posting a message is an update to the workflow that owns the thread (the case's, or the pair's
``RelationshipWorkflow``), which raises and solves the chat tasks; the answer is read back from
the read model, which the workflow has written before it answers. Attachment bytes go to the blob
store and never into a workflow: a message carries only attachment ids.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import Field, WithJsonSchema, field_validator
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import (
    BlobsDep,
    CurrentPrincipal,
    SessionDep,
    SettingsDep,
    TemporalDep,
    require_role,
    visible_case,
)
from api.errors import FieldError, Problem, forbidden, invalid, not_found
from api.idempotency import idempotent
from api.json_body import malformed_json
from api.pagination import PageDep, PageInfo, page_info
from api.routes.tasks import UserRef
from api.uploads import (
    AttachmentOwner,
    Upload,
    UploadForm,
    discard,
    is_multipart,
    read_form,
    store_uploads,
)
from api.workflow_calls import update_workflow
from domain.base import INTEGRAL_FLOAT_AS_INT, ApiModel
from domain.cases import LEAD_THREAD_QUOTES, CaseDetails, thread_open
from domain.chat import (
    MAX_ATTACHMENTS_PER_MESSAGE,
    MAX_MESSAGE_CHARS,
    ChatMessage,
    ChatRole,
    PostMessageInput,
    ThreadType,
)
from domain.enums import CaseStatus, OrgKind, Party, SubStatus
from domain.ids import case_workflow_id
from domain.transitions import FINISHED
from settings import Settings
from store import cases as case_store
from store import chat as chat_store
from store.accounts import Principal
from store.blobs import BlobStore
from store.models import Attachment, User
from workflows.case import CaseWorkflow

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/cases", tags=["chat"])

# Only the two parties write in a chat; ops read everything but speak for nobody.
ChatPrincipal = Annotated[Principal, Depends(require_role(OrgKind.CREDITOR, OrgKind.PARTNER))]
PARTY_OF_ROLE = {OrgKind.CREDITOR: Party.CREDITOR, OrgKind.PARTNER: Party.PARTNER}
ROLE_LABELS = {
    ChatRole.CREDITOR: "Creditor",
    ChatRole.PARTNER: "Partner",
    ChatRole.SYSTEM: "System",
}
CASE_THREADS = [t.value for t in ThreadType if t is not ThreadType.GENERAL]

MessageText = Annotated[str, Field(min_length=1, max_length=MAX_MESSAGE_CHARS)]
NoteText = Annotated[str, Field(min_length=1, max_length=4000)]


# -- payloads ------------------------------------------------------------------------------------
class ThreadRef(ApiModel):
    """Which thread of a case: its type, and for a creditor in a lead thread the partner."""

    # The schema offers the case threads only (General is refused below).
    thread_type: Annotated[ThreadType, WithJsonSchema({"type": "string", "enum": CASE_THREADS})] = (
        ThreadType.INVOICE_CHAT
    )
    partner_id: UUID | None = None

    @field_validator("thread_type")
    @classmethod
    def _case_thread(cls, value: ThreadType) -> ThreadType:
        if value is ThreadType.GENERAL:
            raise ValueError(
                "General is the relationship chat: POST /api/relationships/{relationshipId}/chats"
            )
        return value


class MessagePost(ApiModel):
    """A message and the files uploaded before (multipart sends the same fields, plus
    ``files``)."""

    message: MessageText
    attachment_ids: Annotated[list[UUID], Field(max_length=MAX_ATTACHMENTS_PER_MESSAGE)] = []

    @field_validator("attachment_ids")
    @classmethod
    def _distinct(cls, value: list[UUID]) -> list[UUID]:
        if len(set(value)) != len(value):
            raise ValueError("must not repeat an attachment")
        return value


class ChatPost(MessagePost, ThreadRef):
    """``POST /api/cases/{id}/chats``."""


class RelationshipPost(MessagePost):
    """``POST /api/relationships/{id}/chats``."""


PostT = TypeVar("PostT", bound=MessagePost)


class AttachmentView(ApiModel):
    id: UUID
    filename: str
    content_type: str
    size: int


class ChatMessageView(ApiModel):
    """A chat message; ``isSeen``: the other party has written in the thread since."""

    id: str
    case_id: UUID | None
    relationship_id: UUID | None
    thread_type: ThreadType
    partner_id: UUID
    date_created: dt.datetime
    role: ChatRole
    role_label: str
    message: str
    is_seen: bool
    user: UserRef | None
    attachments: list[AttachmentView]


class ChatMessageList(ApiModel):
    data: list[ChatMessageView]
    page: PageInfo


class CallOutcome(StrEnum):
    REACHED = "Reached"
    NO_ANSWER = "No answer"
    VOICEMAIL = "Voicemail"
    WRONG_NUMBER = "Wrong number"
    PROMISE_TO_PAY = "Promise to pay"
    REFUSED = "Refused"


class NoteEntry(ApiModel):
    note: NoteText


class CallEntry(ApiModel):
    duration_seconds: Annotated[int, Field(ge=0, le=86_400, strict=True), INTEGRAL_FLOAT_AS_INT]
    outcome: CallOutcome
    note: Annotated[str | None, Field(max_length=4000)] = None


class NoteView(ApiModel):
    """A note or a call the partner logged."""

    id: UUID
    type: Literal["note", "call"]
    date_created: dt.datetime
    note: str | None
    duration_seconds: int | None = None
    outcome: CallOutcome | None = None
    user: UserRef | None


class NoteList(ApiModel):
    data: list[NoteView]
    page: PageInfo


class TimelineMessage(ChatMessageView):
    type: Literal["message"] = "message"
    timestamp: dt.datetime


class TimelineNote(NoteView):
    timestamp: dt.datetime


class TimelineStatusChange(ApiModel):
    type: Literal["statusChange"] = "statusChange"
    timestamp: dt.datetime
    seq: int
    status: CaseStatus
    sub_status: SubStatus | None
    changed_by: str
    note: str | None


TimelineItem = Annotated[
    TimelineMessage | TimelineNote | TimelineStatusChange, Field(discriminator="type")
]


class Timeline(ApiModel):
    data: list[TimelineItem]
    page: PageInfo


class OrgView(ApiModel):
    id: UUID
    name: str


class RelationshipView(ApiModel):
    """A creditor-partner pair; ``counterpart`` is the other side for its creditor or partner
    (null for ops)."""

    id: UUID
    creditor: OrgView
    partner: OrgView
    counterpart: OrgView | None
    linked_at: dt.datetime


class RelationshipList(ApiModel):
    data: list[RelationshipView]
    page: PageInfo


# -- rendering -----------------------------------------------------------------------------------
def _user(user: User | None) -> UserRef | None:
    return UserRef(id=user.id, name=user.name, email=user.email) if user else None


def _attachment(row: Attachment) -> AttachmentView:
    return AttachmentView(
        id=row.id, filename=row.filename, content_type=row.content_type, size=row.size
    )


def _message_fields(record: chat_store.MessageRecord) -> dict[str, Any]:
    row = record.message
    role = ChatRole(row.role)
    return {
        "id": row.id,
        "case_id": row.case_id,
        "relationship_id": row.relationship_id,
        "thread_type": ThreadType(row.thread_type),
        "partner_id": row.partner_id,
        "date_created": row.created_at,
        "role": role,
        "role_label": ROLE_LABELS[role],
        "message": row.body,
        "is_seen": record.is_seen,
        "user": _user(record.user),
        "attachments": [_attachment(a) for a in record.attachments],
    }


def message_view(record: chat_store.MessageRecord) -> ChatMessageView:
    return ChatMessageView(**_message_fields(record))


def _note_fields(record: chat_store.NoteRecord) -> dict[str, Any]:
    row = record.note
    return {
        "id": row.id,
        "type": "call" if row.kind == "call" else "note",
        "date_created": row.created_at,
        "note": row.body,
        "duration_seconds": row.call_duration_seconds,
        "outcome": CallOutcome(row.call_outcome) if row.call_outcome else None,
        "user": _user(record.user),
    }


def _timeline_item(entry: chat_store.TimelineEntry) -> TimelineItem:
    if entry.message is not None:
        return TimelineMessage(timestamp=entry.timestamp, **_message_fields(entry.message))
    if entry.note is not None:
        return TimelineNote(timestamp=entry.timestamp, **_note_fields(entry.note))
    change = entry.change
    assert change is not None
    return TimelineStatusChange(
        timestamp=change.timestamp,
        seq=change.seq,
        status=change.status,
        sub_status=change.sub_status,
        changed_by=change.changed_by,
        note=change.note,
    )


async def _posted(session: AsyncSession, message: ChatMessage) -> Response:
    """201 with a message just posted, as the read model has it."""
    session.expire_all()
    record = await chat_store.get_message(session=session, message_id=message.id)
    if record is None:  # the update returns only after the projection: a bug if hit
        raise Problem(500, "projection_missing", "The message was posted but is not readable yet.")
    return JSONResponse(message_view(record).model_dump(mode="json"), status_code=201)


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


async def _check_attachments(
    session: AsyncSession, principal: Principal, owner: AttachmentOwner, ids: list[UUID]
) -> None:
    """Each id must be a file the caller's organisation uploaded to this case, for this side, or
    to this relationship (``owner``); a file of another case or relationship is refused."""
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


# -- posting a message, with files ---------------------------------------------------------------
MESSAGE_FILE_FIELDS: dict[str, Any] = {
    "attachmentIds": {"type": "array", "items": {"type": "string", "format": "uuid"}},
    "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
}


def _message_body(
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
                            **MESSAGE_FILE_FIELDS,
                        },
                    }
                },
            },
        }
    }


async def _message_form(
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


async def _message_post(
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


async def _post_with_files(
    request: Request,
    principal: Principal,
    session: AsyncSession,
    owner: AttachmentOwner,
    post: MessagePost,
    uploads: Sequence[Upload],
    send: Callable[[list[UUID]], Awaitable[ChatMessage]],
) -> Response:
    """Check the files named by id, store the uploaded ones under ``owner``, and post the message
    naming them all (``send``, an update of the workflow that owns the thread).

    Refused (a 4xx), the uploaded files go too. On an unknown outcome (503) they stay, since the
    workflow may yet record the message that names them."""
    await _check_attachments(session, principal, owner, post.attachment_ids)
    stored = await store_uploads(request, principal, uploads, owner)
    try:
        message = await send([*post.attachment_ids, *(a.id for a in stored)])
    except Problem as problem:
        if problem.status < 500:
            await discard(request, [a.id for a in stored])
        raise
    # A retry the workflow had already applied answers with the first attempt's message.
    await discard(request, [a.id for a in stored if a.id not in message.attachment_ids])
    return await _posted(session, message)


async def _file_response(attachment: Attachment, blobs: BlobStore) -> StreamingResponse:
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


def _upload_body(fields: dict[str, Any]) -> dict[str, Any]:
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


async def _upload_form(
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


# -- case chat -----------------------------------------------------------------------------------
CHAT_FORM_FIELDS = ("message", "threadType", "partnerId")
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
    openapi_extra=_message_body(ChatPost, THREAD_FIELDS, LEAD_THREAD_NEEDS_PARTNER),
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
    form = await _message_form(request, settings, CHAT_FORM_FIELDS)
    try:
        post, uploads = await _message_post(request, form, ChatPost, CHAT_FORM_FIELDS)

        async def execute() -> Response:
            row = await visible_case(session, case_id, principal)
            side = thread_partner(row, principal, post)

            async def send(attachment_ids: list[UUID]) -> ChatMessage:
                message: ChatMessage = await update_workflow(
                    request,
                    principal,
                    client,
                    case_workflow_id(case_id),
                    CaseWorkflow.post_message,
                    PostMessageInput(
                        party=PARTY_OF_ROLE[principal.role],
                        org_id=principal.org_id,
                        user_id=principal.user_id,
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
            return await _post_with_files(request, principal, session, owner, post, uploads, send)

        fingerprint = {
            "caseId": str(case_id),
            **post.model_dump(mode="json"),
            "files": [u.fingerprint() for u in uploads],
        }
        return await idempotent(request, principal, fingerprint, execute)
    finally:
        if form is not None:
            await form.close()


@router.get("/{case_id}/chats", response_model=ChatMessageList, responses={401: {}, 404: {}})
async def list_case_messages(
    case_id: UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    page: PageDep,
    thread_type: Annotated[ThreadType | None, Query(alias="threadType")] = None,
    partner_id: Annotated[UUID | None, Query(alias="partnerId")] = None,
) -> ChatMessageList:
    """The case's messages, oldest first: every thread for the creditor and ops, its own side's
    threads for a partner. A thread nobody wrote in yet lists nothing."""
    await visible_case(session, case_id, principal)
    records, total = await chat_store.list_case_messages(
        session=session,
        principal=principal,
        case_id=case_id,
        thread_type=thread_type,
        partner_id=partner_id,
        offset=page.offset,
        limit=page.page_size,
    )
    return ChatMessageList(
        data=[message_view(r) for r in records],
        page=page_info(page, total=total, count=len(records)),
    )


# -- attachments ---------------------------------------------------------------------------------
@router.post(
    "/{case_id}/attachments",
    status_code=201,
    response_model=AttachmentView,
    responses={403: {}, 404: {}, 409: {}, 413: {}, 415: {}, 422: {}},
    openapi_extra=_upload_body(THREAD_FIELDS),
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
    form = await _upload_form(request, settings, ("threadType", "partnerId"))
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
                _attachment(attachment).model_dump(mode="json"),
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
    return await _file_response(attachment, blobs)
