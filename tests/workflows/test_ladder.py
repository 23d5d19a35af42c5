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
import socket
import uuid
from collections.abc import AsyncIterator
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.smtp import SMTP
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.accounts import CaseAccountEvent, CreditorWorkflowInput, SignContractInput
from domain.calendar import add_business_days
from domain.cases import AssignPartnerInput
from domain.enums import OrgKind
from domain.escalation import (
    business_days_after,
    business_days_before,
    idempotency_key,
    next_working_moment,
)
from domain.ids import creditor_workflow_id
from domain.mail import MailCategory
from domain.notices import notice_workflow_id
from domain.tasks import AssignTaskInput, PostponeTaskInput, TaskType
from mail.sink import KeepInDirectory, StoredMessage, list_messages, read_message
from settings import Settings
from store import accounts
from store.db import transaction
from store.models import OutboxEventRow, SentEmail, TaskRow
from tests.mail.conftest import PORTAL, Sink, mail_activities, start
from tests.support import Actor, make_actor
from tests.workflows.test_intake import eventually, validated_case
from tests.workflows.test_lifecycle import open_tasks, runs_of
from worker import build_worker
from workflows.case import CaseWorkflow
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
COPENHAGEN = ZoneInfo("Europe/Copenhagen")


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
    breach = next_working_moment(task.deadline, **CALENDAR)
    escalation = business_days_after(task.deadline, 2, **CALENDAR)
    # Every step's e-mail goes out at 09:00 local, the breach's the next business morning.
    for when in (approaching, breach, escalation):
        assert when.astimezone(COPENHAGEN).time() == dt.time(9)
    assert breach.astimezone(COPENHAGEN).date() > task.deadline.astimezone(COPENHAGEN).date()

    # Nothing before the first step.
    await until(ts_env, approaching - MINUTE)
    await received(sink, 0)
    assert await steps_of(sessions, task.id) == []

    # 1 bd before: the assignee, and without one the organisation's active users, once each.
    await until(ts_env, approaching + MINUTE)
    got = await received(sink, 2)
    assert all(m.subject.startswith("Due soon: ") for m in got)
    assert await steps_of(sessions, task.id) == ["approaching"]

    # At breach the task is overdue (its task.overdue at once) and its e-mail waits for the
    # next working morning.
    await until(ts_env, task.deadline + MINUTE)

    async def overdue() -> None:
        assert (await row_of(sessions, task.id)).overdue_since is not None

    await eventually(overdue)
    await received(sink, 2)
    assert await steps_of(sessions, task.id) == ["approaching"]
    await until(ts_env, breach + MINUTE)
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
    assert all(f"{PORTAL}/account/bank-accounts" in body_of(sink, m) for m in got)
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
    await until(ts_env, business_days_after(task.deadline, 2, **CALENDAR) + MINUTE)
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
        await until(ts_env, business_days_after(task.date_created, days, **CALENDAR) + MINUTE)
        got = await received(sink, n)
        assert got[-1].subject == "Reminder: Sign the collection contract"
        assert addressed_to(got[-1], creditor)
    await ts_env.sleep(dt.timedelta(days=60))
    got = await received(sink, 3)
    assert all(f"{PORTAL}/account/contract" in body_of(sink, m) for m in got)
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
    await until(ts_env, business_days_after(task.date_created, 2, **CALENDAR) + MINUTE)
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
    await until(ts_env, next_working_moment(first, **CALENDAR) + MINUTE)
    await received(sink, 2)  # approaching and breach, for the first deadline
    second = add_business_days(first, 5, **CALENDAR)
    await handle.execute_update(
        CreditorWorkflow.postpone_task,
        PostponeTaskInput(
            task_id=task.id, deadline=second, reason="waiting", user_id=creditor.principal.user_id
        ),
    )
    # The first deadline's escalation is gone with it: nothing until the second comes near.
    await until(ts_env, business_days_after(first, 2, **CALENDAR) + MINUTE)
    await received(sink, 2)
    await until(ts_env, business_days_before(second, 1, **CALENDAR) + MINUTE)
    await received(sink, 3)
    await until(ts_env, business_days_after(second, 2, **CALENDAR) + MINUTE)
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


async def test_every_one_of_120_active_users_gets_the_escalation_e_mail_once(
    ts_env: WorkflowEnvironment,
    mail_worker: Worker,
    sink: Sink,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
) -> None:
    # More active users than one e-mail's MAX_RECIPIENTS (50): the step is split over three
    # e-mails with one idempotency key, never cut short.
    async with transaction(sessions) as session:
        for n in range(119):
            await accounts.create_user(
                session=session, org_id=creditor.org_id, email=f"admin-{n:03}@example.com"
            )
    addresses = {f"admin-{n:03}@example.com" for n in range(119)}
    addresses.add(creditor.principal.user_email.lower())
    await account(
        ts_env,
        creditor,
        task_queue,
        CaseAccountEvent(case_id=uuid.uuid4(), needs_bank_account=True, contract_signed=True),
    )
    task = await task_of(sessions, TaskType.ASSIGN_BANK_ACCOUNT)
    assert task.deadline is not None
    await until(ts_env, business_days_before(task.deadline, 1, **CALENDAR) + MINUTE)
    got = await received(sink, 120)
    assert all(m.subject.startswith("Due soon: ") for m in got)
    assert sorted(parseaddr(m.to)[1].lower() for m in got) == sorted(addresses)
    async with sessions() as session:
        keys = {row.idempotency_key for row in (await session.scalars(select(SentEmail))).all()}
    assert keys == {f"ladder:{task.id}:approaching:{task.deadline.isoformat()}"}


def free_port() -> int:
    """A local port nobody listens on (yet): an SMTP server that is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_an_smtp_outage_holds_up_the_ladder_e_mail_but_never_its_case(
    ts_env: WorkflowEnvironment,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    tmp_path: Path,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    # ts_env is the test's own server: once an activity has waited to be retried, the test
    # server skips no more time (its lock is not given back).
    port = free_port()
    async with build_worker(
        ts_env.client,
        task_queue=task_queue,
        sessions=sessions,
        settings=settings,
        mail=mail_activities(sessions, port),
    ):
        handle = await validated_case(ts_env, sessions, creditor, task_queue, history_limit=60)
        await handle.execute_update(
            CaseWorkflow.assign_partner,
            AssignPartnerInput(partner=partner.org_ref, user_id=ops.principal.user_id),
        )
        [review] = await open_tasks(sessions, TaskType.REVIEW_NEW_CASE)
        assert review.deadline is not None
        await until(ts_env, business_days_before(review.deadline, 1, **CALENDAR) + MINUTE)

        async def fired() -> None:
            assert await steps_of(sessions, review.id) == ["approaching"]

        await eventually(fired)
        # SMTP is down and the e-mail waits for it; the case goes on regardless: it takes
        # updates and continues as new when its history is long (it did not before: its own
        # coroutine retried the send, and the run waited for it to finish).
        before = len(await runs_of(ts_env, handle.id))
        assign = AssignTaskInput(
            task_id=review.id,
            assignee_id=partner.principal.user_id,
            user_id=partner.principal.user_id,
        )
        for _ in range(30):
            await handle.execute_update(CaseWorkflow.assign_task, assign)
            if len(await runs_of(ts_env, handle.id)) > before:
                break
        else:
            raise AssertionError("the case never continued as new while SMTP was down")
        async with sessions() as session:
            copies = (await session.scalars(select(SentEmail))).all()
        assert "sent" not in {copy.outcome for copy in copies}  # at most claimed by an attempt

        # SMTP is back: the e-mail arrives, once, to the partner's user.
        handler = KeepInDirectory(tmp_path / "mail")
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: SMTP(handler), host="127.0.0.1", port=port)
        async with server:
            sink = Sink(handler, port)

            # The send's next attempt, in real time: the time-skipping server skips no clock
            # while an activity waits to be retried (its backoff is seconds by now).
            async def arrived() -> None:
                assert len(mails(sink)) >= 1

            await eventually(arrived, seconds=120)
            [mail] = await received(sink, 1)
            assert mail.subject.startswith("Due soon: ") and addressed_to(mail, partner)
            # Nothing more: the notice's workflow is done.
            notice = ts_env.client.get_workflow_handle(
                notice_workflow_id(idempotency_key(review.id, "approaching", review.deadline))
            )
            assert (await notice.describe()).status == WorkflowExecutionStatus.COMPLETED
            await asyncio.sleep(1)
            await received(sink, 1)
        assert await steps_of(sessions, review.id) == ["approaching"]
