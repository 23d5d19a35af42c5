"""Chat messages and the tasks they raise, in case threads and relationship chats."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.cases import ChangeStatusInput
from domain.chat import PostMessageInput, ThreadType, relationship_id
from domain.enums import CaseStatus, OrgKind, Party, SubStatus
from domain.errors import NOT_A_PARTY
from domain.ids import relationship_workflow_id
from domain.tasks import TaskType
from domain.transitions import Mover
from store.models import ChatMessageRow, Relationship, TaskRow
from tests.support import Actor, make_actor, post_in_relationship
from tests.workflows.test_intake import case_row, eventually, history_of, task_rows
from tests.workflows.test_lifecycle import accepted_case, open_tasks, state_of
from workflows.case import CaseWorkflow
from workflows.relationship import RelationshipWorkflow


def message(actor: Actor, party: Party, body: str, **more: Any) -> PostMessageInput:
    return PostMessageInput(
        party=party, org_id=actor.org_id, user_id=actor.principal.user_id, body=body, **more
    )


async def messages_of(sessions: async_sessionmaker[AsyncSession]) -> list[ChatMessageRow]:
    async with sessions() as session:
        return list(await session.scalars(select(ChatMessageRow).order_by(ChatMessageRow.seq)))


async def test_a_burst_raises_one_reply_task_and_the_reply_turns_it_around(
    ts_env: WorkflowEnvironment,
    ts_worker: Worker,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    handle = await accepted_case(ts_env, sessions, creditor, partner, ops, task_queue)
    case_id = (await state_of(handle)).record.case_id
    first = await handle.execute_update(
        CaseWorkflow.post_message, message(partner, Party.PARTNER, "Debtor called back")
    )
    [reply] = await open_tasks(sessions, TaskType.REPLY_TO_CHAT)
    assert (reply.owner_org_id, reply.case_id, reply.date_created) == (
        creditor.org_id,
        case_id,
        first.created_at,
    )
    assert reply.deadline is not None and reply.deadline - reply.date_created < dt.timedelta(5)
    for n in range(4):  # a burst: still one task, still due for the oldest message
        await ts_env.sleep(dt.timedelta(hours=1))
        await handle.execute_update(
            CaseWorkflow.post_message, message(partner, Party.PARTNER, f"and {n}")
        )
    [still] = await open_tasks(sessions, TaskType.REPLY_TO_CHAT)
    assert (still.id, still.deadline) == (reply.id, reply.deadline)
    assert len(await messages_of(sessions)) == 5

    await handle.execute_update(
        CaseWorkflow.post_message, message(creditor, Party.CREDITOR, "Thanks, go ahead")
    )
    [solved] = await task_rows(sessions, TaskType.REPLY_TO_CHAT)
    assert solved.status == "Solved"
    assert solved.resolved_by == {
        "kind": "user",
        "userId": str(creditor.principal.user_id),
        "reason": "replied in the chat",
    }
    [new_message] = await open_tasks(sessions, TaskType.NEW_MESSAGE)
    assert (new_message.owner_org_id, new_message.case_id) == (partner.org_id, case_id)
    rows = await messages_of(sessions)
    assert [(r.role, r.thread_type, r.partner_id) for r in rows][-1] == (
        "Creditor",
        "Invoice Chat",
        partner.org_id,
    )
    assert [r.seq for r in rows] == list(range(1, 7))


async def test_a_creditor_message_provides_the_information_a_held_case_waits_for(
    ts_env: WorkflowEnvironment,
    ts_worker: Worker,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    handle = await accepted_case(ts_env, sessions, creditor, partner, ops, task_queue)
    case_id = (await state_of(handle)).record.case_id
    for hold, waiting_task in (
        ({"sub_status": SubStatus.MORE_INFO_REQUIRED}, TaskType.MORE_INFO_NEEDED),
        (
            {"sub_status": SubStatus.PAUSED, "waiting_for": Party.CREDITOR},
            TaskType.CLIENT_INPUT_REQUIRED,
        ),
    ):
        await handle.execute_update(
            CaseWorkflow.change_status,
            ChangeStatusInput(
                mover=Mover.PARTNER,
                org_id=partner.org_id,
                user_id=partner.principal.user_id,
                status=CaseStatus.ON_HOLD,
                note="Which invoice lines are disputed?",
                **hold,
            ),
        )
        assert len(await open_tasks(sessions, waiting_task)) == 1
        await handle.execute_update(
            CaseWorkflow.post_message, message(creditor, Party.CREDITOR, "Lines 3 and 4")
        )
        row = await case_row(sessions, case_id)
        assert (row.status, row.sub_status) == ("In Collection", None)
        assert await open_tasks(sessions, waiting_task) == []
        last = (await history_of(sessions, case_id))[-1]
        assert (last.status, last.note) == ("In Collection", "Information provided")


async def test_only_the_parties_of_a_thread_may_write_in_it(
    ts_env: WorkflowEnvironment,
    ts_worker: Worker,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    handle = await accepted_case(ts_env, sessions, creditor, partner, ops, task_queue)
    stranger = await make_actor(sessions, OrgKind.PARTNER)
    refusals = [
        message(stranger, Party.PARTNER, "Hello"),  # not the case's partner
        message(partner, Party.PARTNER, "Hi", thread_type=ThreadType.LEAD_CHAT),  # never quoted
        message(stranger, Party.CREDITOR, "Hi"),  # not the case's creditor
    ]
    for refused in refusals:
        with pytest.raises(WorkflowUpdateFailedError) as caught:
            await handle.execute_update(CaseWorkflow.post_message, refused)
        assert isinstance(caught.value.cause, ApplicationError)
        assert caught.value.cause.type == NOT_A_PARTY
    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(CaseWorkflow.post_message, message(partner, Party.PARTNER, " "))
    assert await messages_of(sessions) == []
    assert await task_rows(sessions, TaskType.REPLY_TO_CHAT) == []


async def test_the_relationship_chat_is_linked_by_the_first_case_and_keeps_its_tasks_off_cases(
    ts_env: WorkflowEnvironment,
    ts_worker: Worker,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    await accepted_case(ts_env, sessions, creditor, partner, ops, task_queue)
    pair = relationship_id(creditor.org_id, partner.org_id)

    async def linked() -> Relationship:
        async with sessions() as session:
            row = await session.get(Relationship, pair)
        assert row is not None
        return row

    row = await eventually(linked)
    assert (row.creditor_id, row.partner_id) == (creditor.org_id, partner.org_id)
    # The first message starts the pair's workflow (the API's update-with-start).
    posted = await post_in_relationship(
        ts_env.client,
        sessions,
        task_queue,
        creditor,
        partner,
        message(creditor, Party.CREDITOR, "Can we talk about next quarter?"),
    )
    chat: WorkflowHandle[Any, Any] = ts_env.client.get_workflow_handle(
        relationship_workflow_id(creditor.org_id, partner.org_id)
    )
    assert (posted.thread_type, posted.relationship_id, posted.case_id) == (
        ThreadType.GENERAL,
        pair,
        None,
    )
    [task] = await open_tasks(sessions, TaskType.NEW_MESSAGE)
    assert (task.owner_org_id, task.case_id, task.relationship_id, task.scope) == (
        partner.org_id,
        None,
        pair,
        "Account",
    )
    await chat.execute_update(
        RelationshipWorkflow.post_message, message(partner, Party.PARTNER, "Sure")
    )
    async with sessions() as session:
        chat_tasks = list(
            await session.scalars(select(TaskRow).where(TaskRow.relationship_id == pair))
        )
    assert sorted((t.type, t.status) for t in chat_tasks) == [
        ("NewMessage", "Solved"),
        ("ReplyToChat", "Open"),
    ]
    with pytest.raises(WorkflowUpdateFailedError):
        stranger = await make_actor(sessions, OrgKind.PARTNER)
        await chat.execute_update(
            RelationshipWorkflow.post_message, message(stranger, Party.PARTNER, "Me too")
        )
