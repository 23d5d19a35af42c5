"""The escalation ladder (domain/escalation.py) on the time-skipping server, with a real SMTP
server: each step fires once, in order, is recorded on the task, emitted as an event and
e-mailed to its audience; solving the task stops it; SignContract's contract reminders are
steps of the same ladder (at most 3, none after signing).

The creditor's account workflow is the vehicle: AssignBankAccount has the standard ladder and
SignContract the contract reminders, both raised and solved by its signals and updates.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.accounts import CaseAccountEvent, CreditorWorkflowInput, SignContractInput
from domain.calendar import add_business_days
from domain.enums import OrgKind
from domain.escalation import business_days_before
from domain.ids import creditor_workflow_id
from domain.mail import MailCategory
from domain.tasks import AssignTaskInput, PostponeTaskInput, TaskType
from mail.sink import KeepInDirectory, StoredMessage, list_messages, read_message
from settings import Settings
from store.models import OutboxEventRow, SentEmail, TaskRow
from tests.mail.conftest import Sink, mail_activities, start
from tests.support import Actor, make_actor
from tests.workflows.test_intake import eventually
from worker import build_worker
from workflows.creditor import CreditorWorkflow

MINUTE = dt.timedelta(minutes=1)


@pytest.fixture
async def sink(tmp_path: Path) -> AsyncIterator[Sink]:
    server, port = await start(KeepInDirectory(tmp_path / "mail"))
    async with server:
        yield Sink(KeepInDirectory(tmp_path / "mail"), port)


@pytest.fixture
async def mail_worker(
    ts_env: WorkflowEnvironment,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    sink: Sink,
    ts_leaves_no_workflows: None,
) -> AsyncIterator[Worker]:
    """The real worker on the time-skipping server, sending e-mail to the sink."""
    async with build_worker(
        ts_env.client,
        task_queue=task_queue,
        sessions=sessions,
        settings=settings,
        mail=mail_activities(sessions, sink.port),
    ) as running:
        yield running


async def colleague(sessions: async_sessionmaker[AsyncSession], of: Actor) -> Actor:
    return await make_actor(sessions, OrgKind.CREDITOR, org_id=of.org_id)


async def account(
    env: WorkflowEnvironment, creditor: Actor, task_queue: str, event: CaseAccountEvent
) -> WorkflowHandle[Any, Any]:
    handle = await env.client.start_workflow(
        CreditorWorkflow.run,
        CreditorWorkflowInput(creditor=creditor.org_ref),
        id=creditor_workflow_id(creditor.org_id),
        task_queue=task_queue,
    )
    await handle.signal(CreditorWorkflow.case_opened, event)
    return handle


async def task_of(sessions: async_sessionmaker[AsyncSession], type: TaskType) -> TaskRow:
    async def raised() -> TaskRow:
        async with sessions() as session:
            rows = (await session.scalars(select(TaskRow).where(TaskRow.type == type))).all()
        assert len(rows) == 1 and rows[0].deadline is not None
        return rows[0]

    return await eventually(raised)


async def row_of(sessions: async_sessionmaker[AsyncSession], task_id: str) -> TaskRow:
    async with sessions() as session:
        row = await session.get(TaskRow, task_id)
    assert row is not None
    return row


async def events_of(sessions: async_sessionmaker[AsyncSession], task_id: str) -> list[str]:
    async with sessions() as session:
        rows = (
            await session.scalars(select(OutboxEventRow).order_by(OutboxEventRow.occurred_at))
        ).all()
    return [row.type for row in rows if (row.payload or {}).get("taskId") == task_id]


def mails(sink: Sink) -> list[StoredMessage]:
    """Every e-mail the sink received, oldest first."""
    return sorted(list_messages(sink.directory), key=lambda m: m.path.name)


async def until(env: WorkflowEnvironment, moment: dt.datetime) -> None:
    """Move the server's clock to ``moment`` (if it is not past already)."""
    left = moment - await env.get_current_time()
    if left > dt.timedelta(0):
        await env.sleep(left)


async def received(sink: Sink, count: int) -> list[StoredMessage]:
    """Wait for ``count`` e-mails in all (activities run in real time), then a moment more, so
    one too many would show."""

    async def arrived() -> list[StoredMessage]:
        got = mails(sink)
        assert len(got) >= count, [m.subject for m in got]
        return got

    await eventually(arrived)
    await asyncio.sleep(0.5)
    got = mails(sink)
    assert len(got) == count, [m.subject for m in got]
    return got


def body_of(sink: Sink, message: StoredMessage) -> str:
    parsed = read_message(sink.directory, message.id)
    assert parsed is not None
    part = parsed.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


async def steps_of(sessions: async_sessionmaker[AsyncSession], task_id: str) -> list[str]:
    return [step["step"] for step in (await row_of(sessions, task_id)).escalations or []]


def addressed_to(message: StoredMessage, actor: Actor) -> bool:
    return actor.principal.user_email.lower() in message.to.lower()


CALENDAR = {"country": "DK", "timezone": "Europe/Copenhagen"}  # make_actor's


async def test_the_ladder_fires_each_step_once_in_order_to_its_audience_until_the_end(
    ts_env: WorkflowEnvironment,
    mail_worker: Worker,
    sink: Sink,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
) -> None:
    other = await colleague(sessions, creditor)
    handle = await account(
        ts_env,
        creditor,
        task_queue,
        CaseAccountEvent(case_id=uuid.uuid4(), needs_bank_account=True, contract_signed=True),
    )
    task = await task_of(sessions, TaskType.ASSIGN_BANK_ACCOUNT)
    assert task.deadline is not None
    approaching = business_days_before(task.deadline, 1, **CALENDAR)
    escalation = add_business_days(task.deadline, 2, **CALENDAR)

    # Nothing before the first step.
    await until(ts_env, approaching - MINUTE)
    await received(sink, 0)
    assert await steps_of(sessions, task.id) == []

    # 1 bd before: the assignee, and without one the organisation's active users, once each.
    await until(ts_env, approaching + MINUTE)
    got = await received(sink, 2)
    assert all(m.subject.startswith("Due soon: ") for m in got)
    assert await steps_of(sessions, task.id) == ["approaching"]

    # At breach: told again, with the one task.overdue.
    await until(ts_env, task.deadline + MINUTE)
    got = await received(sink, 4)
    assert all(m.subject.startswith("Overdue: ") for m in got[2:])
    assert await steps_of(sessions, task.id) == ["approaching", "breach"]

    # 2 bd after: escalated to the admins (the organisation's active users).
    await until(ts_env, escalation + MINUTE)
    got = await received(sink, 6)
    assert all(m.subject.startswith("Escalated, still overdue: ") for m in got[4:])

    # And nothing more, however long the task stays open.
    await ts_env.sleep(dt.timedelta(days=30))
    got = await received(sink, 6)
    row = await row_of(sessions, task.id)
    assert [s["step"] for s in row.escalations or []] == ["approaching", "breach", "escalation"]
    fired_for = [dt.datetime.fromisoformat(s["deadline"]) for s in row.escalations or []]
    assert fired_for == [task.deadline] * 3
    assert await events_of(sessions, task.id) == [
        "task.created",
        "task.deadline_approaching",
        "task.overdue",
        "task.escalated",
    ]
    # Each step's copy went to both of the creditor's users, never the partner's, and links
    # to the page that solves the task.
    for first in range(0, 6, 2):
        pair = got[first : first + 2]
        assert sorted(addressed_to(m, creditor) for m in pair) == [False, True]
        assert sorted(addressed_to(m, other) for m in pair) == [False, True]
    assert not any(addressed_to(m, partner) for m in got)
    assert all("https://portal.example.test/account/bank-accounts" in body_of(sink, m) for m in got)
    async with sessions() as session:
        categories = {row.category for row in (await session.scalars(select(SentEmail))).all()}
    assert categories == {MailCategory.DEADLINE_ESCALATION.value}
    # Ops see the last step in the workflow's current details.
    metadata = await handle.query("__temporal_workflow_metadata")
    assert "Last ladder step: **escalation** of AssignBankAccount" in metadata.current_details


async def test_solving_the_task_mid_ladder_stops_it_and_an_assignee_alone_is_reminded(
    ts_env: WorkflowEnvironment,
    mail_worker: Worker,
    sink: Sink,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
) -> None:
    other = await colleague(sessions, creditor)
    case_id = uuid.uuid4()
    handle = await account(
        ts_env,
        creditor,
        task_queue,
        CaseAccountEvent(case_id=case_id, needs_bank_account=True, contract_signed=True),
    )
    task = await task_of(sessions, TaskType.ASSIGN_BANK_ACCOUNT)
    assert task.deadline is not None
    await handle.execute_update(
        CreditorWorkflow.assign_task,
        AssignTaskInput(
            task_id=task.id, assignee_id=other.principal.user_id, user_id=creditor.principal.user_id
        ),
    )
    await until(ts_env, business_days_before(task.deadline, 1, **CALENDAR) + MINUTE)
    [reminder] = await received(sink, 1)
    assert addressed_to(reminder, other) and reminder.subject.startswith("Due soon: ")

    # Solved before its deadline: no breach, no escalation, ever.
    await handle.signal(CreditorWorkflow.bank_account_assigned, CaseAccountEvent(case_id=case_id))

    async def solved() -> None:
        assert (await row_of(sessions, task.id)).status == "Solved"

    await eventually(solved)
    await until(ts_env, add_business_days(task.deadline, 2, **CALENDAR) + MINUTE)
    await ts_env.sleep(dt.timedelta(days=30))
    await received(sink, 1)
    assert await steps_of(sessions, task.id) == ["approaching"]
    assert await events_of(sessions, task.id) == [
        "task.created",
        "task.deadline_approaching",
        "task.solved",
    ]


async def contract_task(
    env: WorkflowEnvironment,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    task_queue: str,
) -> tuple[WorkflowHandle[Any, Any], TaskRow]:
    handle = await account(env, creditor, task_queue, CaseAccountEvent(case_id=uuid.uuid4()))
    return handle, await task_of(sessions, TaskType.SIGN_CONTRACT)


async def test_an_unsigned_contract_is_followed_up_three_times_and_no_more(
    ts_env: WorkflowEnvironment,
    mail_worker: Worker,
    sink: Sink,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
) -> None:
    _, task = await contract_task(ts_env, sessions, creditor, task_queue)
    for n, days in enumerate((2, 5, 10), start=1):
        await until(ts_env, add_business_days(task.date_created, days, **CALENDAR) + MINUTE)
        got = await received(sink, n)
        assert got[-1].subject == "Reminder: Sign the collection contract"
        assert addressed_to(got[-1], creditor)
    await ts_env.sleep(dt.timedelta(days=60))
    got = await received(sink, 3)
    assert all("https://portal.example.test/account/contract" in body_of(sink, m) for m in got)
    assert await steps_of(sessions, task.id) == ["reminder-1", "reminder-2", "reminder-3"]
    async with sessions() as session:
        categories = {row.category for row in (await session.scalars(select(SentEmail))).all()}
    assert categories == {MailCategory.CONTRACT_REMINDER.value}


async def test_signing_the_contract_ends_its_reminders(
    ts_env: WorkflowEnvironment,
    mail_worker: Worker,
    sink: Sink,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
) -> None:
    handle, task = await contract_task(ts_env, sessions, creditor, task_queue)
    await until(ts_env, add_business_days(task.date_created, 2, **CALENDAR) + MINUTE)
    await received(sink, 1)
    await handle.execute_update(
        CreditorWorkflow.sign_contract, SignContractInput(user_id=creditor.principal.user_id)
    )
    await ts_env.sleep(dt.timedelta(days=60))
    await received(sink, 1)
    assert await steps_of(sessions, task.id) == ["reminder-1"]
    assert (await row_of(sessions, task.id)).status == "Solved"


async def test_postponing_plans_the_ladder_again_and_a_new_breach_fires_again(
    ts_env: WorkflowEnvironment,
    mail_worker: Worker,
    sink: Sink,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
) -> None:
    handle = await account(
        ts_env,
        creditor,
        task_queue,
        CaseAccountEvent(case_id=uuid.uuid4(), needs_bank_account=True, contract_signed=True),
    )
    task = await task_of(sessions, TaskType.ASSIGN_BANK_ACCOUNT)
    first = task.deadline
    assert first is not None
    await until(ts_env, first + MINUTE)
    await received(sink, 2)  # approaching and breach, for the first deadline
    second = add_business_days(first, 5, **CALENDAR)
    await handle.execute_update(
        CreditorWorkflow.postpone_task,
        PostponeTaskInput(
            task_id=task.id, deadline=second, reason="waiting", user_id=creditor.principal.user_id
        ),
    )
    # The first deadline's escalation is gone with it: nothing until the second comes near.
    await until(ts_env, add_business_days(first, 2, **CALENDAR) + MINUTE)
    await received(sink, 2)
    await until(ts_env, business_days_before(second, 1, **CALENDAR) + MINUTE)
    await received(sink, 3)
    await until(ts_env, add_business_days(second, 2, **CALENDAR) + MINUTE)
    got = await received(sink, 5)
    assert [m.subject.split(":")[0] for m in got] == [
        "Due soon",
        "Overdue",
        "Due soon",
        "Overdue",
        "Escalated, still overdue",
    ]
    row = await row_of(sessions, task.id)
    fired = [(s["step"], dt.datetime.fromisoformat(s["deadline"])) for s in row.escalations or []]
    assert fired == [
        ("approaching", first),
        ("breach", first),
        ("approaching", second),
        ("breach", second),
        ("escalation", second),
    ]
    assert await events_of(sessions, task.id) == [
        "task.created",
        "task.deadline_approaching",
        "task.overdue",
        "task.postponed",
        "task.deadline_approaching",
        "task.overdue",
        "task.escalated",
    ]
