"""The nightly chat-task cleanup's side effects: find stale chat tasks, ask whether a reply is still
expected, and have the owning workflow dismiss the task when it is confidently not.

The classifier is pluggable (``ReplyClassifier``). The built-in one works offline: it dismisses
only when the message waiting for an answer is a bare acknowledgement ("Thanks!", "OK, noted").
An LLM-backed classifier implements the same protocol and is passed to ``CleanupActivities``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import uuid
from typing import Literal, Protocol

from sqlalchemy import ColumnElement, Select, and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from domain.chat import (
    CHAT_TASKS,
    CLEANUP_REASON,
    ChatRole,
    CleanupCursor,
    CleanupPage,
    CleanupPageResult,
    CleanupReport,
    DismissChatTask,
    DismissChatTaskInput,
    ReplyVerdict,
    StaleChatTask,
    ThreadLine,
    thread_of,
)
from domain.enums import Party
from domain.errors import TASK_NOT_FOUND, TASK_NOT_OPEN, THREAD_CHANGED
from domain.tasks import TaskStatus, TaskType
from store.models import ChatMessageRow, CleanupVerdict, TaskRow

THREAD_LINES = 6  # how much of the conversation a classifier sees
OWNER_ROLE = {
    CHAT_TASKS[Party.PARTNER]: ChatRole.PARTNER,
    CHAT_TASKS[Party.CREDITOR]: ChatRole.CREDITOR,
}
CHAT_TASK_TYPES = [t.value for t in OWNER_ROLE]


class ReplyClassifier(Protocol):
    """Decides whether the owner of a stale chat task still owes an answer.

    A classifier whose calls cost (a model's) may also have a ``verdict_key`` (str): what
    identifies its verdicts. With one, a verdict that leaves a task open is remembered, and the
    task is not asked about again while its thread is unchanged (``VERDICT_REUSE``); without
    one (the offline classifier: free, and what it knows may grow), every night asks."""

    async def classify(self, task: StaleChatTask) -> ReplyVerdict: ...


# How long a remembered verdict stands for an unchanged thread before the model is asked again.
VERDICT_REUSE = dt.timedelta(days=30)


class ClassifierFailed(Exception):
    """The classifier has no answer (timeout, HTTP error, an answer not as asked); its message
    says why without quoting the thread or the answer (it is logged)."""


# Words a bare acknowledgement is made of, in the platform's languages (English, Danish, German,
# Swedish, Norwegian, Dutch, and French), plus the emoji people answer with.
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
        "så",  # tack så mycket
        "mycket",
        "tusen",  # tusen takk
        "tusind",
        "for",  # tak for det / takk for det
        "det",
        "schön",
        "bestens",
        "erhalten",
        "alles",
        "klar",
        "prima",
        "mottaget",
        "mottatt",
        "bedankt",
        "je",  # dank je (wel)
        "wel",
        "hartelijk",
        "ontvangen",
        "goed",
        "👍",
        "🙏",
        "✅",
        "👌",
        "😊",
        "🙂",
        "🙌",
        "👏",
        "🤝",
        "💪",
        "✔",
        "☺",
        "😀",
        "😃",
        "😄",
    ]
)
# Skin tones, the emoji presentation selector and joiners do not change what an emoji says.
EMOJI_MODIFIERS = re.compile("[\U0001f3fb-\U0001f3ff\ufe0f\u200d]")
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
        words = _ack_words(text)
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


def _ack_words(text: str) -> list[str]:
    """The words of a message, lowercase, each run of emoji split into single emoji."""
    words: list[str] = []
    for word in re.findall(r"[^\s.,!;:()\"'-]+", EMOJI_MODIFIERS.sub("", text.lower())):
        if any(ch.isalnum() for ch in word):
            words.append(word)
        else:
            words.extend(word)  # "👍🙏" is two acknowledgements
    return words


class CleanupActivities:
    """Activities of ``ChatCleanupWorkflow``; one instance per worker.

    ``classify_concurrency`` bounds the classifications one page runs at once (an LLM-backed
    classifier makes a request each), ``dismiss_concurrency`` the updates it has in flight to the
    owning workflows (settings ``CLEANUP_CLASSIFY_CONCURRENCY`` / ``CLEANUP_DISMISS_CONCURRENCY``).
    ``max_classified_per_night`` caps the classifier calls of a night (a model's cost; None: no
    cap); the tasks beyond it stay open, counted as deferred, for the next night.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        client: Client,
        classifier: ReplyClassifier | None = None,
        *,
        classify_concurrency: int = 16,
        dismiss_concurrency: int = 8,
        max_classified_per_night: int | None = None,
    ) -> None:
        self._sessions = sessions
        self._client = client
        self._classifier = classifier or AcknowledgementClassifier()
        self._classify_concurrency = classify_concurrency
        self._dismiss_concurrency = dismiss_concurrency
        self._max_classified = max_classified_per_night

    @activity.defn
    async def clean_chat_page(self, page: CleanupPage) -> CleanupPageResult:
        """Look at one page of open chat tasks overdue since before the cutoff, after the cursor
        (in (overdue since, id) order): classify them, have the owning workflows dismiss the
        confident "no reply expected" ones, and say what was done and where the next page starts.

        Retried after a crash, the page's first attempt may have dismissed some of its tasks,
        which are no longer open: they are found again (solved since the cutoff, in the same
        stretch of the order) and counted once, as the cleanup's or as already gone, without a
        second update.
        """
        async with self._sessions() as session:
            rows = list(await session.scalars(_page_query(page)))
            next_cursor = (
                CleanupCursor(overdue_since=rows[-1].overdue_since, task_id=rows[-1].id)
                if len(rows) == page.size and rows[-1].overdue_since is not None
                else None
            )
            counts = CleanupReport()
            if activity.info().attempt > 1:
                counts = await _solved_meanwhile(session, page, next_cursor)
            tasks = await _with_threads(session, rows)
            key = self._verdict_key
            remembered = {} if key is None else await _remembered(session, key, tasks, page.cutoff)
        report, verdicts = await self._clean(tasks, remembered, classified_before=page.classified)
        if key is not None:
            async with self._sessions() as session, session.begin():
                await _remember(session, key, verdicts, page.cutoff, first_page=page.after is None)
        return CleanupPageResult(counts=counts.plus(report), next=next_cursor)

    @property
    def _verdict_key(self) -> str | None:
        key = getattr(self._classifier, "verdict_key", None)
        return key if isinstance(key, str) and key else None

    async def _clean(
        self,
        tasks: list[StaleChatTask],
        remembered: dict[str, ReplyVerdict],
        *,
        classified_before: int,
    ) -> tuple[CleanupReport, list[tuple[StaleChatTask, ReplyVerdict]]]:
        """Classify ``tasks`` (or take the ``remembered`` verdict) and dismiss the confident
        "no reply expected" ones; what was done, and the new verdicts that left a task open."""
        report = CleanupReport(looked_at=len(tasks))
        kept: list[tuple[StaleChatTask, ReplyVerdict]] = []
        classify_slots = asyncio.Semaphore(self._classify_concurrency)
        dismiss_slots = asyncio.Semaphore(self._dismiss_concurrency)

        def within_cap() -> bool:  # counted before the call: the cap holds however many run
            if (
                self._max_classified is not None
                and classified_before + report.classified >= self._max_classified
            ):
                return False
            report.classified += 1
            return True

        async def classified(task: StaleChatTask) -> ReplyVerdict | None:
            async with classify_slots:
                if not within_cap():
                    report.deferred += 1
                    return None
                try:
                    return await self._classifier.classify(task)
                except ClassifierFailed as exc:
                    activity.logger.warning(
                        "could not classify task %s (%s); left open", task.task_id, exc
                    )
                except Exception:  # any failure of the classifier leaves the task open
                    activity.logger.warning(
                        "could not classify task %s; left open", task.task_id, exc_info=True
                    )
                report.failed += 1
                return None

        async def one(task: StaleChatTask) -> None:
            verdict: ReplyVerdict | None = remembered.get(task.task_id)
            if verdict is not None:
                report.remembered += 1
            else:
                verdict = await classified(task)
                if verdict is not None and (verdict.reply_expected or not verdict.confident):
                    kept.append((task, verdict))
            if verdict is None or verdict.reply_expected or not verdict.confident:
                report.left_open += 1
            else:
                request = DismissChatTask(
                    workflow_id=task.workflow_id,
                    dismiss=DismissChatTaskInput(
                        task_id=task.task_id, reason=verdict.reason, seen_seq=task.seen_seq
                    ),
                )
                async with dismiss_slots:
                    outcome = await self._dismiss(request)
                if outcome == "dismissed":
                    report.resolved += 1
                elif outcome == "changed":
                    report.left_open += 1
                    report.changed += 1
                else:
                    report.already_gone += 1
            # The SDK throttles heartbeats; a stuck page is timed out and retried.
            activity.heartbeat(report.left_open + report.resolved + report.already_gone)

        try:
            async with asyncio.TaskGroup() as group:
                for task in tasks:
                    group.create_task(one(task))
        except ExceptionGroup as errors:  # the page fails with its first error, and is retried
            raise errors.exceptions[0] from None
        return report, kept

    async def _dismiss(self, request: DismissChatTask) -> Literal["dismissed", "gone", "changed"]:
        """Have the owning workflow solve the task: "gone" if it was answered or ended
        meanwhile, "changed" if a message came after the thread was read (it stays open)."""
        handle = self._client.get_workflow_handle(request.workflow_id)
        try:
            await handle.execute_update("dismiss_chat_task", request.dismiss)
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            if isinstance(cause, ApplicationError) and cause.type in (
                TASK_NOT_OPEN,
                TASK_NOT_FOUND,
            ):
                return "gone"
            if isinstance(cause, ApplicationError) and cause.type == THREAD_CHANGED:
                return "changed"
            raise
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:  # the workflow has completed
                return "gone"
            raise
        return "dismissed"


def _overdue_chat_tasks(page: CleanupPage) -> Select[TaskRow]:
    """The chat tasks overdue since before the cutoff and after the cursor, in cursor order
    (served by ``ix_tasks_overdue``: status, overdue_since, id)."""
    query = select(TaskRow).where(
        TaskRow.type.in_(CHAT_TASK_TYPES),
        TaskRow.key.is_not(None),
        TaskRow.overdue_since.is_not(None),
        TaskRow.overdue_since < page.cutoff,
    )
    if page.after is not None:
        since, task_id = page.after.overdue_since, page.after.task_id
        query = query.where(
            TaskRow.overdue_since >= since,
            or_(TaskRow.overdue_since > since, TaskRow.id > task_id),
        )
    return query.order_by(TaskRow.overdue_since, TaskRow.id)


def _page_query(page: CleanupPage) -> Select[TaskRow]:
    return _overdue_chat_tasks(page).where(TaskRow.status == TaskStatus.OPEN.value).limit(page.size)


async def _solved_meanwhile(
    session: AsyncSession, page: CleanupPage, next_cursor: CleanupCursor | None
) -> CleanupReport:
    """On a retried page: the tasks of the page's stretch of the order (up to where the open
    tasks now end) that were closed since the night's cutoff, which the crashed attempt may have
    looked at. Those the cleanup solved count as dismissed, the others as already gone."""
    query = _overdue_chat_tasks(page).where(
        TaskRow.status != TaskStatus.OPEN.value, TaskRow.date_solved >= page.cutoff
    )
    if next_cursor is not None:
        since, task_id = next_cursor.overdue_since, next_cursor.task_id
        query = query.where(
            TaskRow.overdue_since <= since,
            or_(TaskRow.overdue_since < since, TaskRow.id < task_id),
        )
    counts = CleanupReport()
    for row in await session.scalars(query):
        counts.looked_at += 1
        if _solved_by_cleanup(row):
            counts.resolved += 1
        else:
            counts.already_gone += 1
    return counts


def _solved_by_cleanup(row: TaskRow) -> bool:
    by = row.resolved_by or {}
    return by.get("kind") == "system" and str(by.get("reason", "")).startswith(CLEANUP_REASON)


async def _with_threads(session: AsyncSession, rows: list[TaskRow]) -> list[StaleChatTask]:
    """The tasks with the last ``THREAD_LINES`` messages of their threads and the last message
    seq of their owning workflows, in four queries whatever the page's size."""
    case_ids = {row.case_id for row in rows if row.case_id is not None}
    relationship_ids = {
        row.relationship_id
        for row in rows
        if row.case_id is None and row.relationship_id is not None
    }
    lines: dict[tuple[uuid.UUID, str, uuid.UUID], list[ChatMessageRow]] = {}
    # The owning workflow's last message as read (its seq counts all its threads' messages).
    last_seq: dict[uuid.UUID, int] = {}
    for owner, ids in (
        (ChatMessageRow.case_id, case_ids),
        (ChatMessageRow.relationship_id, relationship_ids),
    ):
        if not ids:
            continue
        of_owner: ColumnElement[bool] = owner.in_(ids)
        if owner is ChatMessageRow.relationship_id:
            of_owner = and_(of_owner, ChatMessageRow.case_id.is_(None))
        rank = (
            func.row_number()
            .over(
                partition_by=(owner, ChatMessageRow.thread_type, ChatMessageRow.partner_id),
                order_by=ChatMessageRow.seq.desc(),
            )
            .label("rank")
        )
        last = select(ChatMessageRow.id, rank).where(of_owner).subquery()
        messages = await session.scalars(
            select(ChatMessageRow)
            .join(last, last.c.id == ChatMessageRow.id)
            .where(last.c.rank <= THREAD_LINES)
            .order_by(ChatMessageRow.seq)
        )
        last_seq.update(
            (owner_id, seq)
            for owner_id, seq in await session.execute(
                select(owner, func.max(ChatMessageRow.seq)).where(of_owner).group_by(owner)
            )
            if owner_id is not None
        )
        for message in messages:
            thread_owner = (
                message.case_id if owner is ChatMessageRow.case_id else message.relationship_id
            )
            assert thread_owner is not None
            lines.setdefault((thread_owner, message.thread_type, message.partner_id), []).append(
                message
            )
    tasks = []
    for row in rows:
        assert row.key is not None
        thread_type, partner_id = thread_of(row.key)
        thread_owner = row.case_id if row.case_id is not None else row.relationship_id
        assert thread_owner is not None
        thread = lines.get((thread_owner, thread_type.value, partner_id), [])
        tasks.append(
            StaleChatTask(
                task_id=row.id,
                workflow_id=row.workflow_id,
                owner_role=OWNER_ROLE[TaskType(row.type)],
                seen_seq=last_seq.get(thread_owner, 0),
                thread=[
                    ThreadLine(role=ChatRole(m.role), body=m.body, created_at=m.created_at)
                    for m in thread
                ],
            )
        )
    return tasks


async def _remembered(
    session: AsyncSession, key: str, tasks: list[StaleChatTask], now: dt.datetime
) -> dict[str, ReplyVerdict]:
    """The verdicts of ``key``'s classifier that still stand for ``tasks``: the thread's owner
    had no message since (the same ``seen_seq``), and younger than ``VERDICT_REUSE``."""
    if not tasks:
        return {}
    seen = {task.task_id: task.seen_seq for task in tasks}
    rows = await session.scalars(
        select(CleanupVerdict).where(
            CleanupVerdict.task_id.in_(seen),
            CleanupVerdict.classifier == key,
            CleanupVerdict.decided_at > now - VERDICT_REUSE,
        )
    )
    return {
        row.task_id: ReplyVerdict(
            reply_expected=row.reply_expected, confident=row.confident, reason=row.reason
        )
        for row in rows
        if row.seen_seq == seen[row.task_id]
    }


async def _remember(
    session: AsyncSession,
    key: str,
    verdicts: list[tuple[StaleChatTask, ReplyVerdict]],
    now: dt.datetime,
    *,
    first_page: bool,
) -> None:
    """Keep ``verdicts`` (replacing older ones of their tasks); the night's first page also
    drops those past ``VERDICT_REUSE``, of tasks long solved among them."""
    if first_page:
        await session.execute(
            delete(CleanupVerdict).where(CleanupVerdict.decided_at <= now - VERDICT_REUSE)
        )
    if not verdicts:
        return
    await session.execute(
        delete(CleanupVerdict).where(CleanupVerdict.task_id.in_([t.task_id for t, _ in verdicts]))
    )
    session.add_all(
        CleanupVerdict(
            task_id=task.task_id,
            classifier=key,
            seen_seq=task.seen_seq,
            reply_expected=verdict.reply_expected,
            confident=verdict.confident,
            reason=verdict.reason[:2000],
            decided_at=now,
        )
        for task, verdict in verdicts
    )
