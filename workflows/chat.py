"""Chat rules every thread owner shares (case threads and relationship chats).

Runs inside workflows. A message solves the sender's own open chat task in its thread and raises
the recipient's (NewMessage for a partner, ReplyToChat for a creditor) unless one is already open
for that thread: then the open task stays, with the deadline of the oldest unanswered message.
"""

from __future__ import annotations

import datetime as dt
from uuid import UUID

from temporalio.exceptions import ApplicationError

from domain.accounts import OrgRef
from domain.chat import (
    CHAT_TASKS,
    MAX_MESSAGE_CHARS,
    ChatMessage,
    ChatRole,
    PostMessageInput,
    ThreadType,
    chat_task_key,
)
from domain.enums import Party
from domain.errors import VALIDATION_FAILED
from workflows.taskbook import TaskBook

ROLE_OF = {Party.CREDITOR: ChatRole.CREDITOR, Party.PARTNER: ChatRole.PARTNER}
OTHER = {Party.CREDITOR: Party.PARTNER, Party.PARTNER: Party.CREDITOR}


def check_body(body: str) -> None:
    if not body.strip():
        raise ApplicationError(
            "an empty message cannot be posted", type=VALIDATION_FAILED, non_retryable=True
        )
    if len(body) > MAX_MESSAGE_CHARS:
        raise ApplicationError(
            f"a message has at most {MAX_MESSAGE_CHARS} characters",
            type=VALIDATION_FAILED,
            non_retryable=True,
        )


def message_of(
    arg: PostMessageInput,
    *,
    id: str,
    seq: int,
    now: dt.datetime,
    thread_type: ThreadType,
    partner_id: UUID,
    case_id: UUID | None = None,
    relationship_id: UUID | None = None,
) -> ChatMessage:
    """The message a post makes (and, with an earlier run's id, the answer to a repeated post:
    callers read it back from the read model by its id)."""
    return ChatMessage(
        id=id,
        seq=seq,
        case_id=case_id,
        relationship_id=relationship_id,
        thread_type=thread_type,
        partner_id=partner_id,
        role=ROLE_OF[arg.party],
        org_id=arg.org_id,
        user_id=arg.user_id,
        body=arg.body,
        attachment_ids=arg.attachment_ids,
        created_at=now,
    )


def route_message(
    book: TaskBook,
    message: ChatMessage,
    *,
    sender: Party,
    recipient: OrgRef,
    now: dt.datetime,
    title: str,
    user_id: UUID,
) -> None:
    """Raise and solve the chat tasks a message causes (see the module docstring)."""
    book.solve_open(
        CHAT_TASKS[sender],
        key=chat_task_key(message.thread_type, message.partner_id, sender),
        now=now,
        reason="replied in the chat",
        user_id=user_id,
        org_id=message.org_id,
    )
    book.emit(
        "chat.created",
        now=now,
        org_id=recipient.id,
        case_id=message.case_id,
        payload={
            "messageId": message.id,
            "threadType": message.thread_type.value,
            "partnerId": str(message.partner_id),
            "relationshipId": str(message.relationship_id) if message.relationship_id else None,
            "role": message.role.value,
        },
    )
    receiving = OTHER[sender]
    preview = message.body if len(message.body) <= 280 else message.body[:279] + "…"
    book.raise_task(
        CHAT_TASKS[receiving],
        key=chat_task_key(message.thread_type, message.partner_id, receiving),
        now=now,
        owner=recipient,
        case_id=message.case_id,
        relationship_id=message.relationship_id,
        title=title,
        description=preview,
    )
