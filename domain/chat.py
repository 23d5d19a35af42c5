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

from pydantic import Field

from domain.accounts import OrgRef
from domain.base import ApiModel
from domain.enums import Party
from domain.notices import PartnerBurst
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
    """Start argument of ``RelationshipWorkflow``: the pair and when a case first linked it (the
    row a case's projection wrote; the API starts the workflow with the pair's first general-chat
    message), or the carried state on continue-as-new."""

    creditor: OrgRef
    partner: OrgRef
    linked_at: dt.datetime | None = None
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
    # Partner messages not yet e-mailed to the creditor (domain/notices.py).
    partner_burst: PartnerBurst | None = None
    history_limit: int | None = None
    # Client-key update ids applied lately (domain/update_ids.py, workflows/once.py).
    applied_updates: list[AppliedUpdate] = []


class RelationshipLink(ApiModel):
    """A case linking its creditor and partner: the case's projection writes the pair's row
    (``relationships``) if it has none; the pair's workflow starts with its first general-chat
    message (docs/decisions/0015)."""

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
    # The highest message seq of the owning workflow (all its threads) the read model held when
    # the task was read: the workflow refuses the dismissal if a message came since.
    seen_seq: int | None = None


class ReplyVerdict(ApiModel):
    """Whether the task owner still owes a reply. The cleanup acts only on a confident "no"."""

    reply_expected: bool
    confident: bool
    reason: str


# What a task the nightly cleanup solved says in its ``resolvedBy.reason``, before the why.
CLEANUP_REASON = "nightly cleanup: "


class DismissChatTaskInput(ApiModel):
    """Solve a chat task no reply is expected for (the nightly cleanup), with the reason."""

    task_id: str
    reason: str
    # The owning workflow's last message (seq) the decision saw; a later message in any of its
    # threads makes the workflow refuse (THREAD_CHANGED). None: no check (older callers).
    seen_seq: int | None = None


class DismissChatTask(ApiModel):
    """The cleanup asking a task's owning workflow to dismiss it."""

    workflow_id: str
    dismiss: DismissChatTaskInput


class CleanupReport(ApiModel):
    """What one nightly run did (the workflow's result, shown in the Temporal UI)."""

    looked_at: int = 0
    resolved: int = 0
    left_open: int = 0  # including the three below
    already_gone: int = 0
    # Of those left open: the classifier failed (timeout, HTTP error, an answer not the JSON
    # asked for); the night's cap of classifier calls was reached (the next night asks); a
    # message came in the owning workflow after the thread was read.
    failed: int = 0
    deferred: int = 0
    changed: int = 0
    # Of those left open: a model's verdict of an earlier night stood (the thread unchanged
    # since), so it was not asked again (activities/cleanup.py, VERDICT_REUSE).
    remembered: int = 0
    classified: int = 0  # classifier calls made (what the cap counts)

    def plus(self, other: CleanupReport) -> CleanupReport:
        return CleanupReport(
            **{
                name: getattr(self, name) + getattr(other, name)
                for name in CleanupReport.model_fields
            }
        )


class CleanupCursor(ApiModel):
    """The last task a cleanup page looked at, in the cleanup's order (overdue since, id)."""

    overdue_since: dt.datetime
    task_id: str


class CleanupInput(ApiModel):
    """A nightly cleanup run, or the continuation of one (workflows/cleanup.py).

    The schedule starts it with the defaults; the run sets ``cutoff`` (its start) and carries
    ``after`` and ``totals`` into the run it continues as."""

    page_size: int = Field(default=1000, ge=1, le=5000)
    pages_per_run: int = Field(default=20, ge=1)  # then continue-as-new
    # Ignored: the first 500 tasks were all a run looked at before the cleanup paged. Kept so a
    # schedule created then (whose action still says ``{"limit": 500}``) starts.
    limit: int | None = None
    cutoff: dt.datetime | None = None  # only tasks overdue since before it; None: the run's start
    after: CleanupCursor | None = None  # None: from the first overdue task
    totals: CleanupReport = CleanupReport()  # what earlier runs of the same night did


class CleanupPage(ApiModel):
    """One page of the cleanup: up to ``size`` open overdue chat tasks after ``after``."""

    cutoff: dt.datetime
    after: CleanupCursor | None
    size: int = Field(ge=1)
    classified: int = 0  # classifier calls the night made before this page (for the cap)


class CleanupPageResult(ApiModel):
    """What a page did, and where the next one starts (None: this was the last page)."""

    counts: CleanupReport
    next: CleanupCursor | None


RelationshipWorkflowInput.model_rebuild()
