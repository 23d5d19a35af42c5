"""Chat payloads (SPEC.md "Communication center"): threads, messages and the tasks they raise.

A case's threads live in its ``CaseWorkflow``; the general chat of a creditor-partner pair lives in
that pair's ``RelationshipWorkflow``. Posting is an update to the owning workflow, which records
the message (the read model gets it with the next projection) and raises or solves chat tasks
with the rules in ``CHAT_TASKS``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from uuid import UUID

from domain.accounts import OrgRef
from domain.base import ApiModel
from domain.enums import Party
from domain.tasks import OutboxEvent, Task, TaskBookState, TaskType
from domain.update_ids import AppliedUpdate

MAX_MESSAGE_CHARS = 10_000
MAX_ATTACHMENTS_PER_MESSAGE = 10


class ThreadType(StrEnum):
    INVOICE_CHAT = "Invoice Chat"  # creditor and the partner working the case
    LEAD_CHAT = "Lead Chat"  # creditor and a partner that quoted on the lead
    INVOICE_QUESTIONS_CHAT = "Invoice Questions Chat"  # pre-quote questions of an invited partner
    GENERAL = "General"  # the relationship chat of a creditor-partner pair


class ChatRole(StrEnum):
    CREDITOR = "Creditor"
    PARTNER = "Partner"
    SYSTEM = "System"


# Who gets which task when the other party writes (the sender's own task in that thread is solved).
CHAT_TASKS: dict[Party, TaskType] = {
    Party.PARTNER: TaskType.NEW_MESSAGE,
    Party.CREDITOR: TaskType.REPLY_TO_CHAT,
}


def chat_task_key(thread_type: ThreadType, partner_id: UUID, recipient: Party) -> str:
    """One open chat task per thread and recipient: a burst of messages keeps the first one."""
    return f"chat:{thread_type.value}:{partner_id}:{recipient.value}"


def thread_of(chat_task_key_: str) -> tuple[ThreadType, UUID]:
    """The thread (type and partner side) of a chat task's key (see ``chat_task_key``)."""
    _, thread, partner_id, _ = chat_task_key_.split(":")
    return ThreadType(thread), UUID(partner_id)


def relationship_id(creditor_id: UUID, partner_id: UUID) -> UUID:
    """The id of a creditor-partner pair (and of its workflow)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"caseloop:relationship:{creditor_id}:{partner_id}")


class ChatMessage(ApiModel):
    """One message as the owning workflow keeps it until projected, and the read model stores it."""

    id: str
    seq: int  # order within the owning workflow
    case_id: UUID | None = None
    relationship_id: UUID | None = None
    thread_type: ThreadType
    partner_id: UUID  # the partner side of the thread (a lead has one thread per partner)
    role: ChatRole
    org_id: UUID | None = None
    user_id: UUID | None = None
    body: str
    attachment_ids: list[UUID] = []
    created_at: dt.datetime


class PostMessageInput(ApiModel):
    """Argument of the ``post_message`` updates (the API checked the body and the attachments)."""

    party: Party
    org_id: UUID
    user_id: UUID
    thread_type: ThreadType = ThreadType.INVOICE_CHAT
    partner_id: UUID | None = None  # a creditor writing in a lead thread names the partner
    body: str
    attachment_ids: list[UUID] = []


class RelationshipWorkflowInput(ApiModel):
    creditor: OrgRef
    partner: OrgRef
    state: RelationshipState | None = None


class RelationshipState(ApiModel):
    creditor: OrgRef
    partner: OrgRef
    linked_at: dt.datetime | None = None
    version: int = 0
    projected_version: int = 0
    book: TaskBookState = TaskBookState()
    message_seq: int = 0
    pending_messages: list[ChatMessage] = []
    history_limit: int | None = None
    # Client-key update ids applied lately (domain/update_ids.py, workflows/once.py).
    applied_updates: list[AppliedUpdate] = []


class RelationshipLink(ApiModel):
    """A case linking its creditor and partner (signal-with-start of the pair's workflow)."""

    creditor: OrgRef
    partner: OrgRef
    case_id: UUID


class RelationshipProjection(ApiModel):
    relationship_id: UUID
    version: int
    creditor_id: UUID
    partner_id: UUID
    linked_at: dt.datetime
    messages: list[ChatMessage] = []
    tasks: list[Task] = []
    events: list[OutboxEvent] = []


class ThreadLine(ApiModel):
    """One message of a thread, as the reply-expected classifier sees it."""

    role: ChatRole
    body: str
    created_at: dt.datetime


class StaleChatTask(ApiModel):
    """An overdue chat task the nightly cleanup looks at, with the end of its thread."""

    task_id: str
    workflow_id: str
    owner_role: ChatRole  # the side that is asked to reply
    thread: list[ThreadLine]  # the last messages, oldest first


class ReplyVerdict(ApiModel):
    """Whether the task owner still owes a reply. The cleanup acts only on a confident "no"."""

    reply_expected: bool
    confident: bool
    reason: str


class DismissChatTaskInput(ApiModel):
    """Solve a chat task no reply is expected for (the nightly cleanup), with the reason."""

    task_id: str
    reason: str


class DismissChatTask(ApiModel):
    """The cleanup asking a task's owning workflow to dismiss it."""

    workflow_id: str
    dismiss: DismissChatTaskInput


class CleanupInput(ApiModel):
    """A nightly cleanup run: at most this many overdue chat tasks, oldest overdue first."""

    limit: int = 500


class CleanupReport(ApiModel):
    """What one nightly run did (the workflow's result, shown in the Temporal UI)."""

    looked_at: int = 0
    resolved: int = 0
    left_open: int = 0
    already_gone: int = 0


RelationshipWorkflowInput.model_rebuild()
