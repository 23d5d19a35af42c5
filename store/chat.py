"""Chat, attachment, note and timeline queries for the API.

Who sees what is decided here, in one place:

- a case's messages: whoever sees the case (``store.cases.visible_to``); a partner only the
  threads whose partner side is its own organisation (``visible_threads``);
- a relationship and its chat: its creditor and its partner, and ops (``visible_relationships``);
- an attachment's bytes: a case's file for ops, the case's creditor, and the partner of the
  attachment's thread while it still sees the case (``downloadable_attachment``); a
  relationship's file for whoever sees the relationship (``downloadable_relationship_attachment``).
  A file belongs to a case or to a relationship, never both, and is served only under its own
  owner's path; a message lists only files of its own case or relationship;
- notes and calls: creditors and ops all of a case's; a partner only those its own
  organisation logged (``visible_notes``);
- status changes (in the timeline): as ``store.cases.history`` decides.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, and_, bindparam, exists, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from domain.accounts import OrgRef
from domain.chat import ChatMessage, ChatRole, ThreadType
from domain.enums import OrgKind
from store.accounts import Principal
from store.cases import ReadableChange, get_case, history
from store.db import insert_once, transaction
from store.models import (
    Attachment,
    CaseHistory,
    CaseNote,
    ChatMessageRow,
    Organisation,
    Relationship,
    User,
)

Later = aliased(ChatMessageRow)
CreditorOrg = aliased(Organisation)
PartnerOrg = aliased(Organisation)


# -- messages ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MessageRecord:
    message: ChatMessageRow
    user: User | None
    attachments: list[Attachment]
    is_seen: bool


def visible_threads(principal: Principal) -> ColumnElement[bool]:
    """Of a case the caller sees: a partner reads only its own side's threads, the others all."""
    if principal.role is OrgKind.PARTNER:
        return ChatMessageRow.partner_id == principal.org_id
    return true()


def _seen(same_owner: ColumnElement[bool]) -> Any:
    """A message is seen once the other party wrote after it in the same thread (``same_owner``
    pairs a later message with it: the same case, or the same relationship)."""
    return (
        exists()
        .where(
            same_owner,
            Later.thread_type == ChatMessageRow.thread_type,
            Later.partner_id == ChatMessageRow.partner_id,
            Later.seq > ChatMessageRow.seq,
            Later.role != ChatMessageRow.role,
            Later.role != ChatRole.SYSTEM.value,
        )
        .correlate(ChatMessageRow)
        .label("is_seen")
    )


def _messages(seen: Any) -> Select[Any]:
    return select(ChatMessageRow, User, seen).outerjoin(User, User.id == ChatMessageRow.user_id)


def _same_owner(attachment: Attachment, message: ChatMessageRow) -> bool:
    """A file of the message's own case, or of its own relationship."""
    return (attachment.case_id, attachment.relationship_id) == (
        message.case_id,
        message.relationship_id,
    )


async def _records(session: AsyncSession, rows: Sequence[Any]) -> list[MessageRecord]:
    wanted = {uuid.UUID(a) for row in rows for a in row[0].attachment_ids}
    files = await attachments_by_id(session=session, ids=wanted)
    return [
        MessageRecord(
            message=message,
            user=user,
            attachments=[
                file
                for a in message.attachment_ids
                if (file := files.get(uuid.UUID(a))) is not None and _same_owner(file, message)
            ],
            is_seen=bool(seen),
        )
        for message, user, seen in rows
    ]


async def list_case_messages(
    *,
    session: AsyncSession,
    principal: Principal,
    case_id: uuid.UUID,
    thread_type: ThreadType | None = None,
    partner_id: uuid.UUID | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> tuple[list[MessageRecord], int]:
    """A page of a case's messages the caller may read (all of them without ``limit``),
    oldest first, and the total.

    The caller must already have been checked to see the case (``store.cases.get_case``).
    """
    where = [ChatMessageRow.case_id == case_id, visible_threads(principal)]
    if thread_type is not None:
        where.append(ChatMessageRow.thread_type == thread_type.value)
    if partner_id is not None:
        where.append(ChatMessageRow.partner_id == partner_id)
    total = await session.scalar(select(func.count()).select_from(ChatMessageRow).where(*where))
    rows = await session.execute(
        _messages(_seen(Later.case_id == ChatMessageRow.case_id))
        .where(*where)
        .order_by(ChatMessageRow.seq, ChatMessageRow.id)
        .offset(offset)
        .limit(limit)
    )
    return await _records(session, rows.all()), total or 0


async def list_relationship_messages(
    *, session: AsyncSession, relationship_id: uuid.UUID, offset: int, limit: int
) -> tuple[list[MessageRecord], int]:
    """A page of a relationship's general chat, oldest first, and the total (the caller must
    already have been checked against ``get_relationship``)."""
    where = [ChatMessageRow.relationship_id == relationship_id]
    total = await session.scalar(select(func.count()).select_from(ChatMessageRow).where(*where))
    rows = await session.execute(
        _messages(_seen(Later.relationship_id == ChatMessageRow.relationship_id))
        .where(*where)
        .order_by(ChatMessageRow.seq, ChatMessageRow.id)
        .offset(offset)
        .limit(limit)
    )
    return await _records(session, rows.all()), total or 0


async def posted_message(
    *,
    session: AsyncSession,
    message: ChatMessage,
    author: User | None,
    files: Mapping[uuid.UUID, Attachment],
) -> MessageRecord:
    """A message the caller just posted, as the update answered it (the owning workflow answers
    once the message is projected), rather than read back from the read model.

    ``author`` and ``files`` are what the request knows: the caller's user, and the files it
    named (checked) or uploaded. Only what they lack is read: the author when the message is
    another user's, and files the request did not name (both only on a retry of a post the
    workflow had already recorded for the same organisation and Idempotency-Key). The message is
    shown as posted: not seen, since no later message can exist yet at the moment it is posted.
    """
    if message.user_id is None:
        author = None
    elif author is None or author.id != message.user_id:
        author = await session.get(User, message.user_id)
    missing = {a for a in message.attachment_ids if a not in files}
    if missing:
        files = {**files, **await attachments_by_id(session=session, ids=missing)}
    row = ChatMessageRow(
        id=message.id,
        seq=message.seq,
        case_id=message.case_id,
        relationship_id=message.relationship_id,
        thread_type=message.thread_type.value,
        partner_id=message.partner_id,
        role=message.role.value,
        org_id=message.org_id,
        user_id=message.user_id,
        body=message.body,
        attachment_ids=[str(a) for a in message.attachment_ids],
        created_at=message.created_at,
    )
    return MessageRecord(
        message=row,
        user=author,
        attachments=[
            file
            for a in message.attachment_ids
            if (file := files.get(a)) is not None and _same_owner(file, row)
        ],
        is_seen=False,
    )


# -- relationships -------------------------------------------------------------------------------
@dataclass(frozen=True)
class RelationshipRecord:
    relationship: Relationship
    creditor_name: str
    partner_name: str
    # The two organisations' calendars, as the pair's workflow takes them (``org_refs``).
    creditor_country: str
    creditor_timezone: str
    partner_country: str
    partner_timezone: str

    def org_refs(self) -> tuple[OrgRef, OrgRef]:
        """The creditor and the partner as the pair's workflow names them."""
        row = self.relationship
        return (
            OrgRef(
                id=row.creditor_id,
                name=self.creditor_name,
                country=self.creditor_country,
                timezone=self.creditor_timezone,
            ),
            OrgRef(
                id=row.partner_id,
                name=self.partner_name,
                country=self.partner_country,
                timezone=self.partner_timezone,
            ),
        )


def visible_relationships(principal: Principal) -> ColumnElement[bool]:
    """A pair is seen by its creditor and its partner; ops see every pair."""
    return _relationships_of(principal.role, principal.org_id)


def _relationships_of(
    role: OrgKind, org_id: uuid.UUID | ColumnElement[uuid.UUID]
) -> ColumnElement[bool]:
    if role is OrgKind.OPS:
        return true()
    if role is OrgKind.CREDITOR:
        return Relationship.creditor_id == org_id
    return Relationship.partner_id == org_id


def _relationships() -> Select[Relationship, str, str, str, str, str, str]:
    return (
        select(
            Relationship,
            CreditorOrg.name,
            PartnerOrg.name,
            CreditorOrg.country,
            CreditorOrg.timezone,
            PartnerOrg.country,
            PartnerOrg.timezone,
        )
        .join(CreditorOrg, CreditorOrg.id == Relationship.creditor_id)
        .join(PartnerOrg, PartnerOrg.id == Relationship.partner_id)
    )


async def list_relationships(
    *, session: AsyncSession, principal: Principal, offset: int, limit: int
) -> tuple[list[RelationshipRecord], int]:
    """A page of the caller's pairs, oldest link first, and the total."""
    where = visible_relationships(principal)
    total = await session.scalar(select(func.count()).select_from(Relationship).where(where))
    rows = await session.execute(
        _relationships()
        .where(where)
        .order_by(Relationship.linked_at, Relationship.id)
        .offset(offset)
        .limit(limit)
    )
    return [RelationshipRecord(*row) for row in rows], total or 0


async def get_relationship(
    *, session: AsyncSession, principal: Principal, relationship_id: uuid.UUID
) -> RelationshipRecord | None:
    """The pair if the caller may see it; None otherwise (the API says 404)."""
    params = {"relationship_id": relationship_id, "org_id": principal.org_id}
    row = (await session.execute(_visible_relationship(principal.role), params)).first()
    return RelationshipRecord(*row) if row else None


@functools.cache
def _visible_relationship(role: OrgKind) -> Select[Relationship, str, str, str, str, str, str]:
    """``get_relationship``'s statement for ``role``, built once (ids bound per call)."""
    return _relationships().where(
        Relationship.id == bindparam("relationship_id", type_=Relationship.id.type),
        _relationships_of(role, bindparam("org_id", type_=Relationship.creditor_id.type)),
    )


# -- attachments ---------------------------------------------------------------------------------
async def attachments_by_id(
    *, session: AsyncSession, ids: set[uuid.UUID]
) -> dict[uuid.UUID, Attachment]:
    if not ids:
        return {}
    rows = await session.scalars(select(Attachment).where(Attachment.id.in_(ids)))
    return {row.id: row for row in rows}


async def add_attachment(
    *, sessions: async_sessionmaker[AsyncSession], attachment: Attachment
) -> tuple[Attachment, bool]:
    """Record an attachment once: a second insert with the same id (a retried request) returns
    the first row. The boolean says whether this call created it."""
    return await insert_once(sessions, attachment)


async def delete_attachments(
    *, sessions: async_sessionmaker[AsyncSession], ids: Sequence[uuid.UUID]
) -> list[str]:
    """Remove attachment rows that no message refers to; returns their storage keys (the caller
    deletes the bytes after the rows, so a row never points at missing bytes)."""
    if not ids:
        return []
    async with transaction(sessions) as session:
        rows = list(await session.scalars(select(Attachment).where(Attachment.id.in_(ids))))
        for row in rows:
            await session.delete(row)
    return [row.storage_key for row in rows]


async def downloadable_attachment(
    *, session: AsyncSession, principal: Principal, case_id: uuid.UUID, attachment_id: uuid.UUID
) -> Attachment | None:
    """The attachment if the caller is a party to it: ops, the case's creditor, or the partner
    of the thread it belongs to while that partner still sees the case. None otherwise."""
    if await get_case(session=session, case_id=case_id, principal=principal) is None:
        return None
    return await session.scalar(
        select(Attachment).where(
            Attachment.id == attachment_id, case_attachments_of(case_id, principal)
        )
    )


def case_attachments_of(case_id: uuid.UUID, principal: Principal) -> ColumnElement[bool]:
    """The files of case ``case_id`` the caller may download, once it is known to see the case:
    ops and the creditor all of them, a partner those of its own side's threads."""
    clause = and_(Attachment.case_id == case_id, Attachment.relationship_id.is_(None))
    if principal.role is OrgKind.PARTNER:
        return and_(clause, Attachment.partner_id == principal.org_id)
    return clause


async def downloadable_relationship_attachment(
    *,
    session: AsyncSession,
    principal: Principal,
    relationship_id: uuid.UUID,
    attachment_id: uuid.UUID,
) -> Attachment | None:
    """A file of the relationship's chat if the caller sees the relationship (its creditor, its
    partner, ops). None otherwise, and for a file of a case or of another relationship."""
    visible = await get_relationship(
        session=session, principal=principal, relationship_id=relationship_id
    )
    if visible is None:
        return None
    return await session.scalar(
        select(Attachment).where(
            Attachment.id == attachment_id,
            Attachment.relationship_id == relationship_id,
            Attachment.case_id.is_(None),
        )
    )


# -- notes and calls -----------------------------------------------------------------------------
NoteKind = Literal["note", "call"]


@dataclass(frozen=True)
class NoteRecord:
    note: CaseNote
    user: User | None


async def add_note(
    *, sessions: async_sessionmaker[AsyncSession], note: CaseNote
) -> tuple[CaseNote, bool]:
    """Insert a note or call once: a second insert with the same id (a retried request) returns
    the first row. The boolean says whether this call created it."""
    return await insert_once(sessions, note)


def _notes() -> Select[CaseNote, User]:
    return select(CaseNote, User).outerjoin(User, User.id == CaseNote.user_id)


async def get_note(*, session: AsyncSession, note_id: uuid.UUID) -> NoteRecord | None:
    row = (await session.execute(_notes().where(CaseNote.id == note_id))).first()
    return NoteRecord(*row) if row else None


def visible_notes(principal: Principal) -> ColumnElement[bool]:
    """Of a case the caller sees: a partner reads only the notes and calls its own organisation
    logged (not those of a partner that worked or quoted on the case before), the others all."""
    if principal.role is OrgKind.PARTNER:
        return CaseNote.org_id == principal.org_id
    return true()


async def list_notes(
    *,
    session: AsyncSession,
    principal: Principal,
    case_id: uuid.UUID,
    offset: int = 0,
    limit: int | None = None,
) -> tuple[list[NoteRecord], int]:
    """A page of a case's notes and calls the caller may read, oldest first, and the total.

    The caller must already have been checked to see the case (``store.cases.get_case``).
    """
    where = [CaseNote.case_id == case_id, visible_notes(principal)]
    total = await session.scalar(select(func.count()).select_from(CaseNote).where(*where))
    rows = await session.execute(
        _notes()
        .where(*where)
        .order_by(CaseNote.created_at, CaseNote.id)
        .offset(offset)
        .limit(limit)
    )
    return [NoteRecord(*row) for row in rows], total or 0


# -- the timeline --------------------------------------------------------------------------------
TimelineKind = Literal["statusChange", "message", "note", "call"]
# Entries with the same timestamp: what was said before what it caused (a creditor's answer and
# the resumption it triggers share one moment), so messages, notes and calls come before status
# changes; within a kind, in the order they were made.
RANK: dict[TimelineKind, int] = {"message": 0, "note": 1, "call": 2, "statusChange": 3}


@dataclass(frozen=True)
class TimelineEntry:
    kind: TimelineKind
    timestamp: dt.datetime
    order: tuple[Any, ...]
    message: MessageRecord | None = None
    note: NoteRecord | None = None
    change: ReadableChange | None = None  # as the caller may read it (``store.cases.history``)


async def timeline(
    *,
    session: AsyncSession,
    principal: Principal,
    case_id: uuid.UUID,
    offset: int = 0,
    limit: int | None = None,
) -> tuple[list[TimelineEntry], int]:
    """A page (without ``limit``: all) of the case's messages (threads the caller may read),
    notes, calls and status changes, oldest first, and the total.

    Each source is read in order up to the end of the page and the three are merged, so a page
    costs at most ``offset + limit`` rows per source and needs no database-specific UNION.
    """
    end = None if limit is None else offset + limit
    messages, message_total = await list_case_messages(
        session=session, principal=principal, case_id=case_id, limit=end
    )
    notes, note_total = await list_notes(
        session=session, principal=principal, case_id=case_id, limit=end
    )
    changes = await history(session=session, principal=principal, case_id=case_id, limit=end)
    if end is None:
        history_total: int | None = len(changes)
    else:
        history_total = await session.scalar(
            select(func.count()).select_from(CaseHistory).where(CaseHistory.case_id == case_id)
        )
    entries: list[TimelineEntry] = []
    for change in changes:
        entries.append(
            TimelineEntry(
                "statusChange", change.entry.timestamp, (change.entry.seq,), change=change
            )
        )
    for record in messages:
        row = record.message
        entries.append(TimelineEntry("message", row.created_at, (row.seq, row.id), message=record))
    for note in notes:
        kind: TimelineKind = "call" if note.note.kind == "call" else "note"
        entries.append(TimelineEntry(kind, note.note.created_at, (str(note.note.id),), note=note))
    entries.sort(key=lambda e: (e.timestamp, RANK[e.kind], e.order))
    total = message_total + note_total + (history_total or 0)
    return entries[offset:end], total
