"""The nightly chat-task cleanup: confident "no reply expected" tasks go, everything else stays."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.cleanup import AcknowledgementClassifier
from domain.chat import (
    ChatRole,
    CleanupInput,
    CleanupReport,
    PostMessageInput,
    StaleChatTask,
    ThreadLine,
)
from domain.enums import Party
from domain.ids import relationship_workflow_id
from domain.tasks import TaskType
from tests.support import Actor
from tests.workflows.test_intake import task_rows
from tests.workflows.test_lifecycle import accepted_case, open_tasks, state_of
from workflows.case import CaseWorkflow
from workflows.cleanup import ChatCleanupWorkflow
from workflows.relationship import RelationshipWorkflow

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


async def run_cleanup(env: WorkflowEnvironment, task_queue: str) -> CleanupReport:
    """One nightly run, awaited without handing time-skipping to the SDK: its auto-unlock around
    ``result()`` is unreliable on this server and could leave the clock locked for later tests."""
    with env.auto_time_skipping_disabled():
        return await env.client.execute_workflow(
            ChatCleanupWorkflow.run,
            CleanupInput(),
            id=f"cleanup-{uuid.uuid4()}",
            task_queue=task_queue,
        )


async def say(
    handle: WorkflowHandle[Any, Any], update: Any, actor: Actor, party: Party, body: str
) -> None:
    await handle.execute_update(
        update,
        PostMessageInput(
            party=party, org_id=actor.org_id, user_id=actor.principal.user_id, body=body
        ),
    )


async def test_the_nightly_run_dismisses_only_acknowledgements_with_the_reason(
    ts_env: WorkflowEnvironment,
    ts_worker: Worker,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    thanked = await accepted_case(ts_env, sessions, creditor, partner, ops, task_queue)
    asked = await accepted_case(ts_env, sessions, creditor, partner, ops, task_queue)
    await say(thanked, CaseWorkflow.post_message, partner, Party.PARTNER, "Thanks!")
    await say(asked, CaseWorkflow.post_message, partner, Party.PARTNER, "Can you send the PO?")
    pair = ts_env.client.get_workflow_handle(
        relationship_workflow_id(creditor.org_id, partner.org_id)
    )
    await say(pair, RelationshipWorkflow.post_message, creditor, Party.CREDITOR, "Great, thanks 👍")
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
