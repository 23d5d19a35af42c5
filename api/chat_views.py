"""What the chat API shows: the payloads and views of chat messages, attachments, notes, calls,
the case timeline and relationships, built from read-model records. Shared by the chat, notes and
relationship routers (api/routes/chat.py, case_notes.py, relationships.py)."""

from __future__ import annotations

import datetime as dt
import logging
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID

from pydantic import Field, WithJsonSchema, field_validator

from api.pagination import PageInfo, PageParams, page_info
from api.routes.tasks import UserRef
from domain.base import INTEGRAL_FLOAT_AS_INT, ApiModel
from domain.chat import (
    MAX_ATTACHMENTS_PER_MESSAGE,
    MAX_MESSAGE_CHARS,
    ChatRole,
    ThreadType,
)
from domain.enums import CaseStatus, OrgKind, Party, SubStatus
from store import chat as chat_store
from store.models import Attachment, User

logger = logging.getLogger(__name__)

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
    ``files``), and, as in Debitura's ``SendChatRequest``, the user of the caller's organisation
    who writes it: ``userEmail`` or ``userId`` (``api.chat_posts.sender_of``; neither: the
    caller)."""

    message: MessageText
    attachment_ids: Annotated[list[UUID], Field(max_length=MAX_ATTACHMENTS_PER_MESSAGE)] = []
    user_email: Annotated[str, Field(min_length=1, max_length=320)] | None = None
    user_id: UUID | None = None

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


class ChatUserView(ApiModel):
    """Who wrote a message: Debitura's ``UserRelationDto`` names (``firstName``, ``lastName``:
    caseloop's one ``name`` split at its last space), and caseloop's ``name`` beside them."""

    id: UUID
    first_name: str | None
    last_name: str | None
    email: str
    name: str | None


class ChatMessageView(ApiModel):
    """A chat message: Debitura's ``ChatDto`` fields (``id, dateCreated, dateUpdated, role,
    roleLabel, message, isSeen, user``), then caseloop's (the thread, the files). ``isSeen``:
    the other party has written in the thread since; ``dateUpdated`` is ``dateCreated``, as a
    message is never edited."""

    id: str
    date_created: dt.datetime
    date_updated: dt.datetime
    role: ChatRole
    role_label: str
    message: str
    is_seen: bool
    user: ChatUserView | None
    case_id: UUID | None
    relationship_id: UUID | None
    thread_type: ThreadType
    partner_id: UUID
    attachments: list[AttachmentView]


class ChatMessageList(ApiModel):
    """A page of a relationship's general chat."""

    page: PageInfo
    chats: list[ChatMessageView]


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
    page: PageInfo
    notes: list[NoteView]


ActorType = Literal["System", "Creditor user", "Partner user"]


class TimelineActor(ApiModel):
    """Debitura's ``TimelineActorDto``: who acted, a person of either side or the platform."""

    type: ActorType
    name: str | None


class TimelineFields(ApiModel):
    """Debitura's ``TimelineItemDto`` fields, which every timeline item has; caseloop's own
    fields of each kind follow them."""

    date: dt.datetime
    title: str
    description: str | None
    actor: TimelineActor


class TimelineMessage(TimelineFields, ChatMessageView):
    type: Literal["message"] = "message"


class TimelineNote(TimelineFields, NoteView):
    pass


class TimelineStatusChange(TimelineFields):
    type: Literal["statusChange"] = "statusChange"
    seq: int
    status: CaseStatus
    sub_status: SubStatus | None
    changed_by: str
    changed_by_id: UUID | None
    note: str | None


TimelineItem = Annotated[
    TimelineMessage | TimelineNote | TimelineStatusChange, Field(discriminator="type")
]


class Timeline(ApiModel):
    """Debitura's ``CaseTimelineResponse``: every item, oldest first, and the stage of the
    collection (``Pre-legal``, ``Legal``, or null while no partner collects)."""

    items: list[TimelineItem]
    current_engagement_phase: str | None


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
    page: PageInfo
    relationships: list[RelationshipView]


# -- rendering -----------------------------------------------------------------------------------
def _user(user: User | None) -> UserRef | None:
    return UserRef(id=user.id, name=user.name, email=user.email) if user else None


def chat_user(user: User | None) -> ChatUserView | None:
    """A message's writer; a one-word name is the first name."""
    if user is None:
        return None
    first, _, last = (user.name or "").strip().rpartition(" ")
    if not first:
        first, last = last, ""
    return ChatUserView(
        id=user.id,
        first_name=first or None,
        last_name=last or None,
        email=user.email,
        name=user.name,
    )


def attachment_view(row: Attachment) -> AttachmentView:
    return AttachmentView(
        id=row.id, filename=row.filename, content_type=row.content_type, size=row.size
    )


def message_fields(record: chat_store.MessageRecord) -> dict[str, Any]:
    row = record.message
    role = ChatRole(row.role)
    return {
        "id": row.id,
        "date_created": row.created_at,
        "date_updated": row.created_at,
        "role": role,
        "role_label": ROLE_LABELS[role],
        "message": row.body,
        "is_seen": record.is_seen,
        "user": chat_user(record.user),
        "case_id": row.case_id,
        "relationship_id": row.relationship_id,
        "thread_type": ThreadType(row.thread_type),
        "partner_id": row.partner_id,
        "attachments": [attachment_view(a) for a in record.attachments],
    }


def message_view(record: chat_store.MessageRecord) -> ChatMessageView:
    return ChatMessageView(**message_fields(record))


def message_list(
    records: list[chat_store.MessageRecord], total: int, page: PageParams
) -> ChatMessageList:
    """One page of messages of a thread's or a pair's chat."""
    return ChatMessageList(
        chats=[message_view(r) for r in records],
        page=page_info(page, total=total, count=len(records)),
    )


def note_fields(record: chat_store.NoteRecord) -> dict[str, Any]:
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


ACTOR_OF_ROLE: dict[ChatRole, ActorType] = {
    ChatRole.CREDITOR: "Creditor user",
    ChatRole.PARTNER: "Partner user",
    ChatRole.SYSTEM: "System",
}
# Who changed a status, by the kind of organisation that acted (ops are the platform).
ACTOR_OF_ORG: dict[OrgKind | None, ActorType] = {
    None: "System",
    OrgKind.OPS: "System",
    OrgKind.CREDITOR: "Creditor user",
    OrgKind.PARTNER: "Partner user",
}


def _name(user: User | None) -> str | None:
    return (user.name or user.email) if user else None


def timeline_item(entry: chat_store.TimelineEntry) -> TimelineItem:
    """One timeline item: Debitura's ``date``, ``title``, ``description`` and ``actor``, then
    the fields of its kind (a message's, a note's or call's, a status change's as
    ``GET .../history`` shows it)."""
    if entry.message is not None:
        fields = message_fields(entry.message)
        return TimelineMessage(
            date=entry.timestamp,
            title=f"Message in {fields['thread_type'].value}",
            description=fields["message"],
            actor=TimelineActor(type=ACTOR_OF_ROLE[fields["role"]], name=_name(entry.message.user)),
            **fields,
        )
    if entry.note is not None:
        fields = note_fields(entry.note)
        outcome = fields["outcome"]
        return TimelineNote(
            date=entry.timestamp,
            title=f"Call: {outcome.value}"
            if outcome
            else "Call"
            if fields["type"] == "call"
            else "Note",
            description=fields["note"],
            actor=TimelineActor(type="Partner user", name=_name(entry.note.user)),
            **fields,
        )
    change = entry.change
    assert change is not None
    recorded = change.entry
    status = recorded.status.value
    return TimelineStatusChange(
        date=recorded.timestamp,
        title=f"{status}: {recorded.sub_status.value}" if recorded.sub_status else status,
        description=recorded.note,
        actor=TimelineActor(type=ACTOR_OF_ORG[change.org_kind], name=change.changed_by),
        seq=recorded.seq,
        status=recorded.status,
        sub_status=recorded.sub_status,
        changed_by=change.changed_by,
        changed_by_id=change.user_id,
        note=recorded.note,
    )
