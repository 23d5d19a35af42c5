"""What a projection costs the database, in statements (counts, not times: bench/ times it).

A projection writes each table it touches with one statement (an upsert of all its rows, the
version check in its WHERE), reads back nothing it was given, and leaves a case's invitations
and the visibility of its other tasks alone unless who sees the case changed. It also gives a
new task its default deadline and answers with it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.projection import ProjectionActivities
from domain.cases import CaseProjection, CaseRecord, HistoryEntry
from domain.chat import ChatMessage, ChatRole, ThreadType
from domain.enums import CaseStatus
from domain.ids import case_workflow_id
from domain.tasks import (
    AccessLevel,
    OutboxEvent,
    ProjectionResult,
    ResolvedBy,
    Scope,
    Task,
    TaskStatus,
    TaskType,
    task_id,
)
from store.models import TaskRow
from tests.support import Actor, new_case_record, thread_trips

T1 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
T2 = T1 + dt.timedelta(minutes=5)


@contextmanager
def statements(sessions: async_sessionmaker[AsyncSession]) -> Iterator[list[str]]:
    """The SQL statements sent to the database meanwhile (an executemany is one)."""
    engine: AsyncEngine = sessions.kw["bind"]
    sent: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(" ".join(statement.split()[:3]).upper())

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    try:
        yield sent
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", seen)


def chat_task(record: CaseRecord, owner: Actor, *, version: int, key: str) -> Task:
    return Task(
        id=task_id(case_workflow_id(record.case_id), f"{key}#1"),
        type=TaskType.REPLY_TO_CHAT,
        title="Reply",
        description="",
        access_level=AccessLevel.PARTNER,
        scope=Scope.CASE,
        owner_org_id=owner.org_id,
        owner_country="DK",
        owner_timezone="Europe/Copenhagen",
        case_id=record.case_id,
        date_created=T2,
        key=key,
        workflow_id=case_workflow_id(record.case_id),
        version=version,
    )


async def chat_message(
    sessions: async_sessionmaker[AsyncSession], creditor: Actor, partner: Actor
) -> tuple[Callable[[], Awaitable[ProjectionResult]], Task]:
    """A case with a chat task waiting on the creditor, and the projection of the creditor's
    answer (run by the returned call): the message, the task solved, one raised, two events.
    Also returns the raised task."""
    record = new_case_record(creditor)
    record.created_at = record.last_status_change = T1
    record.partner = partner.org_ref
    project = ProjectionActivities(sessions).project_case
    env = ActivityEnvironment()
    answered = chat_task(record, creditor, version=1, key="chat:a")
    answered.access_level = AccessLevel.CREDITOR
    answered.deadline = answered.original_deadline = T2
    await env.run(
        project,
        CaseProjection(
            version=1,
            modified_at=T1,
            case=record,
            new_history=[HistoryEntry(seq=1, timestamp=T1, status=CaseStatus.CREATED)],
            tasks=[answered],
        ),
    )
    answered.status = TaskStatus.SOLVED
    answered.date_solved = T2
    answered.resolved_by = ResolvedBy(kind="user", reason="answered")
    answered.version = 2
    raised = chat_task(record, partner, version=1, key="chat:b")
    message = ChatMessage(
        id=task_id(case_workflow_id(record.case_id), "message#1"),
        seq=1,
        case_id=record.case_id,
        thread_type=ThreadType.INVOICE_CHAT,
        partner_id=partner.org_id,
        role=ChatRole.CREDITOR,
        org_id=creditor.org_id,
        body="Any news?",
        created_at=T2,
    )
    events = [
        OutboxEvent(
            id=task_id(case_workflow_id(record.case_id), f"event#{n}"),
            type=kind,
            case_id=record.case_id,
            occurred_at=T2,
            payload={"n": n},
        )
        for n, kind in ((1, "task.solved"), (2, "task.created"))
    ]

    async def run() -> ProjectionResult:
        result: ProjectionResult = await env.run(
            project,
            CaseProjection(
                version=2,
                modified_at=T2,
                case_id=record.case_id,
                messages=[message],
                tasks=[answered, raised],
                events=events,
            ),
        )
        return result

    return run, raised


async def test_a_chat_message_is_written_with_one_statement_per_table_and_no_read(
    sessions: async_sessionmaker[AsyncSession], creditor: Actor, partner: Actor
) -> None:
    project, raised = await chat_message(sessions, creditor, partner)
    with statements(sessions) as sent:
        result = await project()

    kinds = [s for s in sent if not s.startswith(("BEGIN", "COMMIT", "ROLLBACK", "SELECT 1"))]
    assert kinds == [
        "UPDATE CASES SET",  # version and updated_at
        "INSERT INTO CHAT_MESSAGES",
        "INSERT INTO TASKS",  # both tasks, one statement
        "UPDATE TASKS SET",  # their stored visibility, these two rows only
        "INSERT INTO OUTBOX_EVENTS",  # both events
        # Webhooks (issue 12): with no subscription, events cost one indexed SELECT and no
        # more (store/webhooks.py ``fan_out``).
        "SELECT WEBHOOK_SUBSCRIPTIONS.ID, WEBHOOK_SUBSCRIPTIONS.ORG_ID,",
    ], sent
    # The new task got its default deadline (two business days), written and answered.
    assert set(result.deadlines) == {raised.id}
    async with sessions() as session:
        row = await session.get(TaskRow, raised.id)
    assert row is not None and row.deadline == result.deadlines[raised.id]
    assert row.deadline is not None and row.deadline > T2 + dt.timedelta(days=1)
    assert row.case_visible is True


async def test_a_chat_message_projection_on_sqlite_is_one_thread_trip_per_statement_and_commit(
    sessions: async_sessionmaker[AsyncSession], creditor: Actor, partner: Actor
) -> None:
    """store/sqlite_driver.py: the projection's six statements (five writes and the webhook
    subscriptions' SELECT) and its COMMIT are seven round trips between the event loop and the
    SQLite connection's thread (SQLAlchemy's aiosqlite adapter made 3 per statement, 4 with
    rows: 16 for the five writes)."""
    engine: AsyncEngine = sessions.kw["bind"]
    if engine.dialect.name != "sqlite":
        pytest.skip("a SQLite driver's thread")
    project, _ = await chat_message(sessions, creditor, partner)
    with statements(sessions) as sent, thread_trips(engine) as trips:
        await project()
    assert len(sent) == 6, sent
    assert trips == ["_run"] * 6 + ["commit"]


async def test_a_chat_message_projection_without_subscribers_sends_only_its_five_writes(
    sessions: async_sessionmaker[AsyncSession], creditor: Actor, partner: Actor
) -> None:
    """Once a process has loaded the active webhook subscriptions (its first projection with
    events, above), the events' upsert reads their version and the case's parties, and
    fan-out sends nothing: five statements and their COMMIT, six trips on SQLite
    (store/webhooks.py ``fan_out``; tests/store/test_webhook_subscriptions_version.py)."""
    engine: AsyncEngine = sessions.kw["bind"]
    project, _ = await chat_message(sessions, creditor, partner)
    await project()
    with statements(sessions) as sent, thread_trips(engine) as trips:
        await project()
    kinds = [s for s in sent if not s.startswith(("BEGIN", "COMMIT", "ROLLBACK", "SELECT 1"))]
    assert kinds == [
        "UPDATE CASES SET",
        "INSERT INTO CHAT_MESSAGES",
        "INSERT INTO TASKS",
        "UPDATE TASKS SET",
        "INSERT INTO OUTBOX_EVENTS",
    ], sent
    if engine.dialect.name == "sqlite":
        assert trips == ["_run"] * 5 + ["commit"]


async def test_a_status_change_leaves_invitations_and_other_tasks_alone_unless_visibility_moved(
    sessions: async_sessionmaker[AsyncSession], creditor: Actor, partner: Actor
) -> None:
    record = new_case_record(creditor)
    record.created_at = record.last_status_change = T1
    project = ProjectionActivities(sessions).project_case
    env = ActivityEnvironment()
    await env.run(project, CaseProjection(version=1, modified_at=T1, case=record))

    changed = record.model_copy(deep=True)
    changed.status = CaseStatus.VALIDATED
    changed.last_status_change = T2
    with statements(sessions) as same_party:
        await env.run(project, CaseProjection(version=2, modified_at=T2, case=changed))
    assigned = changed.model_copy(deep=True)
    assigned.partner = partner.org_ref
    with statements(sessions) as new_partner:
        await env.run(project, CaseProjection(version=3, modified_at=T2, case=assigned))

    assert not [s for s in same_party if "CASE_INVITATIONS" in s or s.startswith("UPDATE TASKS")]
    assert [s for s in new_partner if "CASE_INVITATIONS" in s or s.startswith("UPDATE TASKS")]
