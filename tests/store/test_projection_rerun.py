"""A projection written by a workflow task that was then lost gives way to the task's re-run.

Projections are local activities inside the workflow task that accepts an update
(docs/decisions/0009). A worker killed after the write committed but before the task completed
leaves rows that no history holds; the update is applied again in a new task, with a new
``workflow.now()``, and projected with the same version and keys. The kill drill found the first
attempt's payment time staying in the read model; this pins the rule down for every kind of row.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.projection import ProjectionActivities
from domain.cases import CaseProjection, CaseRecord, HistoryEntry
from domain.chat import ChatMessage, ChatRole, ThreadType
from domain.enums import CaseStatus
from domain.ids import case_workflow_id
from domain.tasks import OutboxEvent, task_id
from domain.time import as_utc
from store.models import Case, CaseHistory, ChatMessageRow, OutboxEventRow
from tests.support import Actor, new_case_record

FIRST = dt.datetime(2026, 12, 1, 15, 17, 7, tzinfo=dt.UTC)
RERUN = FIRST + dt.timedelta(seconds=10)


def _id(record: CaseRecord, name: str) -> str:
    """A row id as the case workflow makes it (deterministic, from the workflow id)."""
    return task_id(case_workflow_id(record.case_id), name)


def _attempt(record: CaseRecord, partner: Actor, at: dt.datetime) -> CaseProjection:
    """Version 2 of the case as one attempt of the same workflow task writes it."""
    attempt = record.model_copy(deep=True)
    attempt.last_status_change = at
    return CaseProjection(
        version=2,
        modified_at=at,
        case=attempt,
        new_history=[HistoryEntry(seq=2, timestamp=at, status=CaseStatus.VALIDATED)],
        messages=[
            ChatMessage(
                id=_id(record, "message#1"),
                seq=1,
                case_id=record.case_id,
                thread_type=ThreadType.INVOICE_CHAT,
                partner_id=partner.org_id,
                role=ChatRole.PARTNER,
                org_id=partner.org_id,
                body=f"written at {at:%H:%M:%S}",
                created_at=at,
            )
        ],
        events=[
            OutboxEvent(
                id=_id(record, "event#1"),
                type="case.status_changed",
                org_id=record.creditor.id,
                case_id=record.case_id,
                occurred_at=at,
                payload={"at": at.isoformat()},
            )
        ],
    )


async def test_a_re_run_task_s_projection_replaces_what_the_lost_attempt_wrote(
    sessions: async_sessionmaker[AsyncSession], creditor: Actor, partner: Actor
) -> None:
    record = new_case_record(creditor)
    record.created_at = record.last_status_change = FIRST - dt.timedelta(minutes=1)
    project = ProjectionActivities(sessions).project_case
    env = ActivityEnvironment()
    await env.run(
        project,
        CaseProjection(
            version=1,
            modified_at=record.created_at,
            case=record,
            new_history=[
                HistoryEntry(seq=1, timestamp=record.created_at, status=CaseStatus.CREATED)
            ],
        ),
    )
    await env.run(project, _attempt(record, partner, FIRST))  # the attempt that was lost
    await env.run(project, _attempt(record, partner, RERUN))  # the one history holds

    async with sessions() as session:
        case = await session.get(Case, record.case_id)
        entry = await session.scalar(
            select(CaseHistory).where(CaseHistory.case_id == record.case_id, CaseHistory.seq == 2)
        )
        message = await session.get(ChatMessageRow, _id(record, "message#1"))
        event = await session.get(OutboxEventRow, _id(record, "event#1"))
    assert case is not None and entry is not None and message is not None and event is not None
    assert as_utc(case.last_status_change) == RERUN
    assert as_utc(case.updated_at) == RERUN
    assert as_utc(entry.timestamp) == RERUN
    assert (as_utc(message.created_at), message.body) == (RERUN, "written at 15:17:17")
    assert (as_utc(event.occurred_at), event.payload) == (RERUN, {"at": RERUN.isoformat()})


async def test_an_older_version_never_replaces_a_newer_one(
    sessions: async_sessionmaker[AsyncSession], creditor: Actor, partner: Actor
) -> None:
    record = new_case_record(creditor)
    record.created_at = record.last_status_change = FIRST - dt.timedelta(minutes=1)
    project = ProjectionActivities(sessions).project_case
    env = ActivityEnvironment()
    newer = _attempt(record, partner, RERUN)
    newer.version = 3
    await env.run(project, CaseProjection(version=1, modified_at=FIRST, case=record))
    await env.run(project, newer)
    await env.run(project, _attempt(record, partner, FIRST).model_copy(update={"messages": []}))

    async with sessions() as session:
        case = await session.get(Case, record.case_id)
    assert case is not None and case.version == 3
    assert as_utc(case.last_status_change) == RERUN
