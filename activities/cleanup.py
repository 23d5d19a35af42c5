"""The nightly chat-task cleanup's side effects: find stale chat tasks, ask whether a reply is still
expected, and have the owning workflow dismiss the task when it is confidently not.

The classifier is pluggable (``ReplyClassifier``). The built-in one works offline: it dismisses
only when the message waiting for an answer is a bare acknowledgement ("Thanks!", "OK, noted").
An LLM-backed classifier implements the same protocol and is passed to ``CleanupActivities``.
"""

from __future__ import annotations

import re
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from domain.chat import (
    CHAT_TASKS,
    ChatRole,
    DismissChatTask,
    ReplyVerdict,
    StaleChatTask,
    ThreadLine,
    thread_of,
)
from domain.enums import Party
from domain.errors import TASK_NOT_FOUND, TASK_NOT_OPEN
from domain.tasks import TaskStatus, TaskType
from store.models import ChatMessageRow, TaskRow

THREAD_LINES = 6  # how much of the conversation a classifier sees
OWNER_ROLE = {
    CHAT_TASKS[Party.PARTNER]: ChatRole.PARTNER,
    CHAT_TASKS[Party.CREDITOR]: ChatRole.CREDITOR,
}


class ReplyClassifier(Protocol):
    """Decides whether the owner of a stale chat task still owes an answer."""

    async def classify(self, task: StaleChatTask) -> ReplyVerdict: ...


# Words a bare acknowledgement is made of, in the platform's languages (English, Danish, German,
# French, Swedish/Norwegian), plus the emoji people answer with.
ACKNOWLEDGEMENT_WORDS = frozenset(
    [
        "thanks",
        "thank",
        "you",
        "thx",
        "ty",
        "ok",
        "okay",
        "k",
        "noted",
        "got",
        "it",
        "perfect",
        "great",
        "good",
        "fine",
        "sounds",
        "will",
        "do",
        "done",
        "received",
        "all",
        "understood",
        "cheers",
        "much",
        "a",
        "lot",
        "many",
        "very",
        "appreciated",
        "super",
        "nice",
        "tak",
        "mange",
        "okay",
        "modtaget",
        "danke",
        "vielen",
        "dank",
        "gut",
        "merci",
        "beaucoup",
        "bien",
        "reçu",
        "tack",
        "takk",
        "👍",
        "🙏",
        "✅",
        "👌",
        "😊",
        "🙂",
    ]
)
MAX_ACKNOWLEDGEMENT_WORDS = 8


class AcknowledgementClassifier:
    """The built-in, offline classifier: sure only of acknowledgements, unsure of everything else
    (and the cleanup leaves unsure tasks open)."""

    async def classify(self, task: StaleChatTask) -> ReplyVerdict:
        if not task.thread:
            return ReplyVerdict(reply_expected=True, confident=False, reason="no message found")
        last = task.thread[-1]
        if last.role is task.owner_role:
            return ReplyVerdict(
                reply_expected=False,
                confident=True,
                reason="the last message in the thread is the owner's own",
            )
        text = last.body.strip()
        words = re.findall(r"[^\s.,!;:()\"'-]+", text.lower())
        if (
            "?" not in text
            and 0 < len(words) <= MAX_ACKNOWLEDGEMENT_WORDS
            and all(word in ACKNOWLEDGEMENT_WORDS for word in words)
        ):
            quoted = text if len(text) <= 60 else text[:57] + "..."
            return ReplyVerdict(
                reply_expected=False,
                confident=True,
                reason=f'the last message is an acknowledgement ("{quoted}")',
            )
        return ReplyVerdict(
            reply_expected=True, confident=False, reason="the last message may need an answer"
        )


class CleanupActivities:
    """Activities of ``ChatCleanupWorkflow``; one instance per worker."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        client: Client,
        classifier: ReplyClassifier | None = None,
    ) -> None:
        self._sessions = sessions
        self._client = client
        self._classifier = classifier or AcknowledgementClassifier()

    @activity.defn
    async def find_stale_chat_tasks(self, limit: int) -> list[StaleChatTask]:
        """Open, overdue NewMessage / ReplyToChat tasks (oldest overdue first), with the end of
        their thread."""
        async with self._sessions() as session:
            rows = list(
                await session.scalars(
                    select(TaskRow)
                    .where(
                        TaskRow.status == TaskStatus.OPEN.value,
                        TaskRow.type.in_([t.value for t in OWNER_ROLE]),
                        TaskRow.overdue_since.is_not(None),
                        TaskRow.key.is_not(None),
                    )
                    .order_by(TaskRow.overdue_since, TaskRow.id)
                    .limit(limit)
                )
            )
            return [await self._with_thread(session, row) for row in rows]

    async def _with_thread(self, session: AsyncSession, row: TaskRow) -> StaleChatTask:
        assert row.key is not None
        thread_type, partner_id = thread_of(row.key)
        owner = (
            ChatMessageRow.case_id == row.case_id
            if row.case_id is not None
            else ChatMessageRow.relationship_id == row.relationship_id
        )
        messages = list(
            await session.scalars(
                select(ChatMessageRow)
                .where(
                    owner,
                    ChatMessageRow.thread_type == thread_type.value,
                    ChatMessageRow.partner_id == partner_id,
                )
                .order_by(ChatMessageRow.seq.desc())
                .limit(THREAD_LINES)
            )
        )
        return StaleChatTask(
            task_id=row.id,
            workflow_id=row.workflow_id,
            owner_role=OWNER_ROLE[TaskType(row.type)],
            thread=[
                ThreadLine(role=ChatRole(m.role), body=m.body, created_at=m.created_at)
                for m in reversed(messages)
            ],
        )

    @activity.defn
    async def classify_reply(self, task: StaleChatTask) -> ReplyVerdict:
        """Ask the classifier whether the task's owner still owes an answer."""
        return await self._classifier.classify(task)

    @activity.defn
    async def dismiss_chat_task(self, request: DismissChatTask) -> bool:
        """Have the owning workflow solve the task; False if it was answered or ended meanwhile."""
        handle = self._client.get_workflow_handle(request.workflow_id)
        try:
            await handle.execute_update("dismiss_chat_task", request.dismiss)
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            if isinstance(cause, ApplicationError) and cause.type in (
                TASK_NOT_OPEN,
                TASK_NOT_FOUND,
            ):
                return False
            raise
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:  # the workflow has completed
                return False
            raise
        return True
