"""The nightly chat-task cleanup: confident "no reply expected" tasks go, everything else stays."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.cleanup import AcknowledgementClassifier, CleanupActivities
from domain.chat import (
    ChatRole,
    CleanupInput,
    CleanupPage,
    CleanupPageResult,
    CleanupReport,
    PostMessageInput,
    ReplyVerdict,
    StaleChatTask,
    ThreadLine,
)
from domain.enums import Party
from domain.tasks import TaskType
from tests.support import Actor, post_in_relationship
from tests.workflows.test_intake import task_rows
from tests.workflows.test_lifecycle import accepted_case, open_tasks, state_of
from worker import build_worker
from workflows.case import CaseWorkflow
from workflows.cleanup import ChatCleanupWorkflow

NOW = dt.datetime(2026, 11, 23, 2, tzinfo=dt.UTC)


def stale(*lines: tuple[ChatRole, str], owner: ChatRole = ChatRole.CREDITOR) -> StaleChatTask:
    return StaleChatTask(
        task_id="t",
        workflow_id="case-x",
        owner_role=owner,
        thread=[ThreadLine(role=role, body=body, created_at=NOW) for role, body in lines],
    )


@pytest.mark.parametrize(
    "last", ["Thanks!", "ok, thank you", "Noted 👍", "Mange tak", "Perfect, got it.", "👍"]
)
async def test_a_bare_acknowledgement_confidently_needs_no_reply(last: str) -> None:
    verdict = await AcknowledgementClassifier().classify(
        stale((ChatRole.CREDITOR, "Invoice attached"), (ChatRole.PARTNER, last))
    )
    assert (verdict.reply_expected, verdict.confident) == (False, True)
    assert last.strip() in verdict.reason


@pytest.mark.parametrize(
    "last",
    [
        "Thanks! Can you send the PO?",
        "ok?",
        "The debtor says he paid in March, please check your bank statement",
        "Thanks, but the amount is wrong",
    ],
)
async def test_anything_else_is_left_to_a_human(last: str) -> None:
    verdict = await AcknowledgementClassifier().classify(stale((ChatRole.PARTNER, last)))
    assert not (verdict.confident and not verdict.reply_expected)


async def run_cleanup(
    env: WorkflowEnvironment, task_queue: str, input: CleanupInput | None = None
) -> CleanupReport:
    """One nightly run, awaited without handing time-skipping to the SDK: its auto-unlock around
    ``result()`` is unreliable on this server and could leave the clock locked for later tests."""
    return (await start_cleanup(env, task_queue, input))[1]


async def start_cleanup(
    env: WorkflowEnvironment, task_queue: str, input: CleanupInput | None = None
) -> tuple[WorkflowHandle[Any, CleanupReport], CleanupReport]:
    """A nightly run (see ``run_cleanup``): the handle of its first run and the night's report."""
    with env.auto_time_skipping_disabled():
        handle = await env.client.start_workflow(
            ChatCleanupWorkflow.run,
            input or CleanupInput(),
            id=f"cleanup-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        return handle, await handle.result()


async def say(
    handle: WorkflowHandle[Any, Any], update: Any, actor: Actor, party: Party, body: str
) -> None:
    await handle.execute_update(
        update,
        PostMessageInput(
            party=party, org_id=actor.org_id, user_id=actor.principal.user_id, body=body
        ),
    )


async def three_chat_tasks(
    env: WorkflowEnvironment,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    task_queue: str,
) -> tuple[WorkflowHandle[Any, Any], WorkflowHandle[Any, Any]]:
    """Two cases, one thanked and one asked a question by the partner, and a "Great, thanks 👍"
    in the pair's relationship chat: three chat tasks, two of them acknowledgements."""
    thanked = await accepted_case(env, sessions, creditor, partner, ops, task_queue)
    asked = await accepted_case(env, sessions, creditor, partner, ops, task_queue)
    await say(thanked, CaseWorkflow.post_message, partner, Party.PARTNER, "Thanks!")
    await say(asked, CaseWorkflow.post_message, partner, Party.PARTNER, "Can you send the PO?")
    await post_in_relationship(
        env.client,
        sessions,
        task_queue,
        creditor,
        partner,
        PostMessageInput(
            party=Party.CREDITOR,
            org_id=creditor.org_id,
            user_id=creditor.principal.user_id,
            body="Great, thanks 👍",
        ),
    )
    return thanked, asked


async def test_the_nightly_run_dismisses_only_acknowledgements_with_the_reason(
    ts_env: WorkflowEnvironment,
    ts_worker: Worker,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    thanked, asked = await three_chat_tasks(ts_env, sessions, creditor, partner, ops, task_queue)
    # Not overdue yet: the cleanup looks only at overdue tasks.
    early = await run_cleanup(ts_env, task_queue)
    assert early.looked_at == 0

    await ts_env.sleep(dt.timedelta(days=6))
    replies = await open_tasks(sessions, TaskType.REPLY_TO_CHAT)
    assert len(replies) == 2 and all(t.overdue_since for t in replies)
    report = await run_cleanup(ts_env, task_queue)
    assert (report.looked_at, report.resolved, report.left_open) == (3, 2, 1)

    thanked_case = (await state_of(thanked)).record.case_id
    by_case = {t.case_id: t for t in await task_rows(sessions, TaskType.REPLY_TO_CHAT)}
    dismissed = by_case[thanked_case]
    assert (dismissed.status, dismissed.resolved_by) == (
        "Solved",
        {
            "kind": "system",
            "userId": None,
            "reason": 'nightly cleanup: the last message is an acknowledgement ("Thanks!")',
        },
    )
    assert by_case[(await state_of(asked)).record.case_id].status == "Open"
    [general] = await task_rows(sessions, TaskType.NEW_MESSAGE)
    assert (general.relationship_id is not None, general.status) == (True, "Solved")
    # A second night finds only the question, and leaves it.
    again = await run_cleanup(ts_env, task_queue)
    assert (again.looked_at, again.resolved, again.left_open) == (1, 0, 1)


async def three_overdue_chat_tasks(
    env: WorkflowEnvironment,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    task_queue: str,
) -> None:
    await three_chat_tasks(env, sessions, creditor, partner, ops, task_queue)
    await env.sleep(dt.timedelta(days=6))


async def open_chat_tasks(sessions: async_sessionmaker[AsyncSession]) -> int:
    return len(await open_tasks(sessions, TaskType.REPLY_TO_CHAT)) + len(
        await open_tasks(sessions, TaskType.NEW_MESSAGE)
    )


async def test_every_overdue_task_is_looked_at_however_many_pages_it_takes(
    ts_env: WorkflowEnvironment,
    ts_worker: Worker,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    await three_overdue_chat_tasks(ts_env, sessions, creditor, partner, ops, task_queue)
    report = await run_cleanup(ts_env, task_queue, CleanupInput(page_size=1))
    assert report == CleanupReport(
        looked_at=3, resolved=2, left_open=1, already_gone=0, classified=3
    )
    assert await open_chat_tasks(sessions) == 1


async def test_a_night_continues_as_new_carrying_its_cutoff_cursor_and_totals(
    ts_env: WorkflowEnvironment,
    ts_worker: Worker,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    await three_overdue_chat_tasks(ts_env, sessions, creditor, partner, ops, task_queue)
    first, report = await start_cleanup(
        ts_env, task_queue, CleanupInput(page_size=1, pages_per_run=2)
    )
    assert report == CleanupReport(
        looked_at=3, resolved=2, left_open=1, already_gone=0, classified=3
    )

    history = await ts_env.client.get_workflow_handle(
        first.id, run_id=first.first_execution_run_id
    ).fetch_history()
    *_, last = history.events
    assert last.HasField("workflow_execution_continued_as_new_event_attributes")
    [carried] = await ts_env.client.data_converter.decode(
        last.workflow_execution_continued_as_new_event_attributes.input.payloads, [CleanupInput]
    )
    assert isinstance(carried, CleanupInput)
    assert carried.totals.looked_at == 2 and carried.after is not None
    assert carried.cutoff is not None and carried.cutoff <= last.event_time.ToDatetime(dt.UTC)
    # Two page activities in the first run: its history stays small.
    scheduled = [
        e for e in history.events if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert len(scheduled) == 2 and len(history.events) <= 20


class CrashingAfterItsWork:
    """The real page activity, whose first attempt of each page dies after doing its work
    (dismissals sent, result not returned), as when a worker is lost."""

    def __init__(self, real: CleanupActivities) -> None:
        self.real = real
        self.crashes = 0

    @activity.defn(name="clean_chat_page")
    async def clean_chat_page(self, page: CleanupPage) -> CleanupPageResult:
        result = await self.real.clean_chat_page(page)
        if activity.info().attempt == 1:
            self.crashes += 1
            raise RuntimeError("worker lost before the page reported")
        return result


async def test_a_retried_page_counts_and_dismisses_each_task_once(
    ts_env: WorkflowEnvironment,
    ts_leaves_no_workflows: None,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    crashing = CrashingAfterItsWork(CleanupActivities(sessions, ts_env.client))
    async with build_worker(
        ts_env.client,
        task_queue=task_queue,
        sessions=sessions,
        replace_activities=[crashing.clean_chat_page],
    ):
        await three_overdue_chat_tasks(ts_env, sessions, creditor, partner, ops, task_queue)
        report = await run_cleanup(ts_env, task_queue)
    assert crashing.crashes == 1
    assert report == CleanupReport(
        looked_at=3, resolved=2, left_open=1, already_gone=0, classified=1
    )
    assert await open_chat_tasks(sessions) == 1


class BrokenClassifier:
    async def classify(self, task: StaleChatTask) -> ReplyVerdict:
        raise RuntimeError("the model is unreachable")


async def test_a_task_that_cannot_be_classified_is_left_open_and_counted(
    ts_env: WorkflowEnvironment,
    ts_leaves_no_workflows: None,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    async with build_worker(
        ts_env.client, task_queue=task_queue, sessions=sessions, classifier=BrokenClassifier()
    ):
        await three_overdue_chat_tasks(ts_env, sessions, creditor, partner, ops, task_queue)
        report = await run_cleanup(ts_env, task_queue)
    assert report == CleanupReport(
        looked_at=3, resolved=0, left_open=3, already_gone=0, failed=3, classified=3
    )
    assert await open_chat_tasks(sessions) == 3
