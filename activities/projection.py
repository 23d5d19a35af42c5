"""Projection activities: copy workflow state into the read model, idempotently.

Each write carries the workflow's version number and every row has a deterministic key (task,
message and event ids, history entries by (case, seq)), so a retried or replayed activity never
duplicates anything, and a row never moves back to an older version.

A write of the *same* version replaces what is there. Projections are local activities run
inside the workflow task that accepts an update (docs/decisions/0009). When that task is lost
(its worker killed after the write committed, before the task completed), nothing of it is in
history: the update is applied again in a new task, with a new ``workflow.now()``, and its
projection carries the same version and keys with the values history now holds. The earlier
attempt's rows must give way to them, or the read model would keep what no workflow state ever
held (tests/integration/test_worker_kill_drill.py). An outbox event already delivered is left as
it was sent.

A write that fails because the database is unreachable, locked or restarting is retried by
Temporal until it succeeds (``workflows/retry.py``). One that fails for any other reason (a value
the database refuses, a bug) would fail the same way forever, so after a few attempts it fails
for good with ``projection_failed``, and the workflow tells ops instead of hanging
(``TaskOwnerWorkflow._await_projection_repair``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.accounts import AccountProjection
from domain.cases import CaseDetails, CaseProjection, CaseRecord
from domain.chat import ChatMessage, RelationshipProjection
from domain.errors import PROJECTION_FAILED
from domain.tasks import OutboxEvent, Task
from store.db import transaction
from store.models import (
    NO_DEADLINE,
    Case,
    CaseHistory,
    CaseInvitation,
    ChatMessageRow,
    Organisation,
    OutboxEventRow,
    Relationship,
    TaskRow,
)
from store.tasks import refresh_case_tasks


def _case_columns(record: CaseRecord) -> dict[str, object]:
    submission = record.submission
    return {
        "case_number": record.case_number,
        "creditor_id": record.creditor_id,
        "partner_id": record.partner_id,
        "partner_name": record.partner.name if record.partner else None,
        "bank_account_id": record.bank_account.id if record.bank_account else None,
        "submitted_by": record.submitted_by,
        "creditor_reference": submission.creditor_reference,
        "currency_code": submission.currency_code,
        "amount_to_recover": submission.amount_to_recover,
        "date": submission.date,
        "due_date": submission.due_date,
        "claim_description": submission.claim_description,
        "debtor_name": submission.debtor.name,
        "debtor": submission.debtor.model_dump(mode="json"),
        "status": record.status.value,
        "sub_status": record.sub_status.value if record.sub_status else None,
        "last_status_change": record.last_status_change,
        "close_code": record.close_code.value if record.close_code else None,
        "created_at": record.created_at,
        "details": CaseDetails.of(record).model_dump(mode="json"),
    }


# Failures that go away by themselves: the database is down, restarting, locked or slow.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
    ConnectionError,
    TimeoutError,
)
# Attempts of a write that fails for another reason before it fails for good (a concurrent
# attempt's row can make one attempt fail once; three in a row is no race).
ATTEMPTS_BEFORE_GIVING_UP = 3


def describe_failure(error: BaseException) -> str:
    """What failed, in words fit for a log line and the Temporal UI: types and the database's
    message, never the values written (engines hide bound parameters: ``store.db``)."""
    if isinstance(error, sa_exc.StatementError) and error.orig is not None:
        return f"{type(error).__name__} ({type(error.orig).__name__}: {error.orig})"[:500]
    return type(error).__name__


class ProjectionActivities:
    """Activities that write the read model; one instance per worker, sharing its engine."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncSession]:
        """A transaction whose failure is retried while retrying can help (see module doc)."""
        try:
            async with transaction(self._sessions) as session:
                yield session
        except TRANSIENT_ERRORS:
            raise
        except Exception as error:
            if activity.info().attempt < ATTEMPTS_BEFORE_GIVING_UP:
                raise
            raise ApplicationError(
                f"the read model refused the write: {describe_failure(error)}",
                type=PROJECTION_FAILED,
                non_retryable=True,
            ) from None  # the cause's text may hold the values written

    @activity.defn
    async def project_case(self, projection: CaseProjection) -> None:
        """Write the case row as of ``projection.version`` (its columns only when the record
        came along: it changed) and append its new history entries."""
        record = projection.case
        case_id = projection.case_id
        assert case_id is not None  # CaseProjection fills it in
        async with self._write() as session:
            row = await session.get(Case, case_id, with_for_update=True)
            if row is None:
                if record is None:
                    # The workflow sends the record with its first projection of every run.
                    raise ApplicationError(
                        "the case row is missing and the projection carries no record",
                        type=PROJECTION_FAILED,
                        non_retryable=True,
                    )
                session.add(
                    Case(
                        id=case_id,
                        version=projection.version,
                        updated_at=projection.modified_at,
                        **_case_columns(record),
                    )
                )
                await session.flush()
                await _sync_invitations(session, record)
            elif row.version <= projection.version:  # equal: a re-run task (module doc)
                if record is not None:
                    for column, value in _case_columns(record).items():
                        setattr(row, column, value)
                    await _sync_invitations(session, record)
                row.version = projection.version
                row.updated_at = projection.modified_at
            if projection.new_history:
                seqs = [entry.seq for entry in projection.new_history]
                existing = {
                    entry.seq: entry
                    for entry in await session.scalars(
                        select(CaseHistory).where(
                            CaseHistory.case_id == case_id, CaseHistory.seq.in_(seqs)
                        )
                    )
                }
                for entry in projection.new_history:
                    _put(
                        session,
                        existing.get(entry.seq),
                        CaseHistory,
                        case_id=case_id,
                        seq=entry.seq,
                        timestamp=entry.timestamp,
                        status=entry.status.value,
                        sub_status=entry.sub_status.value if entry.sub_status else None,
                        changed_by=entry.changed_by,
                        note=entry.note,
                    )
            await write_messages(session, projection.messages)
            await write_tasks(session, projection.tasks)
            await write_events(session, projection.events)

    @activity.defn
    async def project_relationship(self, projection: RelationshipProjection) -> None:
        """Write a creditor-partner pair, its new general-chat messages, tasks and events."""
        async with self._write() as session:
            row = await session.get(Relationship, projection.relationship_id, with_for_update=True)
            if row is None:
                session.add(
                    Relationship(
                        id=projection.relationship_id,
                        version=projection.version,
                        creditor_id=projection.creditor_id,
                        partner_id=projection.partner_id,
                        linked_at=projection.linked_at,
                    )
                )
                await session.flush()
            elif row.version <= projection.version:
                row.version = projection.version
            await write_messages(session, projection.messages)
            await write_tasks(session, projection.tasks)
            await write_events(session, projection.events)

    @activity.defn
    async def project_account(self, projection: AccountProjection) -> None:
        """Write a creditor account's contract state, tasks and events."""
        async with self._write() as session:
            org = await session.get(Organisation, projection.creditor_id, with_for_update=True)
            if org is not None and org.account_version <= projection.version:
                org.contract_signed_at = projection.contract_signed_at
                org.account_version = projection.version
            await write_tasks(session, projection.tasks)
            await write_events(session, projection.events)


async def _sync_invitations(session: AsyncSession, record: CaseRecord) -> None:
    """Make ``case_invitations`` hold exactly the partners whose quote on the case is open."""
    wanted = set(CaseDetails.of(record).open_invitations)
    rows = list(
        await session.scalars(
            select(CaseInvitation).where(CaseInvitation.case_id == record.case_id)
        )
    )
    for row in rows:
        if row.partner_id not in wanted:
            await session.delete(row)
    session.add_all(
        CaseInvitation(case_id=record.case_id, partner_id=partner_id)
        for partner_id in wanted - {row.partner_id for row in rows}
    )
    # Who sees the case may have changed: so may who sees its tasks.
    await refresh_case_tasks(session, {record.case_id})


def _task_columns(task: Task) -> dict[str, object]:
    return {
        "version": task.version,
        "workflow_id": task.workflow_id,
        "key": task.key,
        "type": task.type.value,
        "title": task.title,
        "description": task.description,
        "status": task.status.value,
        "access_level": task.access_level.value,
        "scope": task.scope.value,
        "owner_org_id": task.owner_org_id,
        "case_id": task.case_id,
        "relationship_id": task.relationship_id,
        "deadline": task.deadline,
        "sort_deadline": task.deadline or NO_DEADLINE,
        "original_deadline": task.original_deadline,
        "date_created": task.date_created,
        "date_solved": task.date_solved,
        "overdue_since": task.overdue_since,
        "assignee_id": task.assignee_id,
        "resolved_by": task.resolved_by.model_dump(mode="json") if task.resolved_by else None,
    }


async def write_tasks(session: AsyncSession, tasks: list[Task]) -> None:
    """Upsert tasks; a row never moves back in version (an equal one is a re-run task's)."""
    if not tasks:
        return
    rows = {
        row.id: row
        for row in await session.scalars(
            select(TaskRow).where(TaskRow.id.in_([t.id for t in tasks])).with_for_update()
        )
    }
    for task in tasks:
        row = rows.get(task.id)
        if row is None:
            session.add(TaskRow(id=task.id, **_task_columns(task)))
        elif row.version <= task.version:
            for column, value in _task_columns(task).items():
                setattr(row, column, value)
    await refresh_case_tasks(session, {task.case_id for task in tasks if task.case_id})


async def write_messages(session: AsyncSession, messages: list[ChatMessage]) -> None:
    """Write chat messages by their deterministic ids (a re-run task's replaces an earlier
    attempt's: module doc)."""
    if not messages:
        return
    existing = {
        row.id: row
        for row in await session.scalars(
            select(ChatMessageRow).where(ChatMessageRow.id.in_([m.id for m in messages]))
        )
    }
    for message in messages:
        _put(
            session,
            existing.get(message.id),
            ChatMessageRow,
            id=message.id,
            seq=message.seq,
            case_id=message.case_id,
            relationship_id=message.relationship_id,
            thread_type=message.thread_type.value,
            partner_id=message.partner_id,
            role=message.role.value,
            org_id=message.org_id,
            user_id=message.user_id,
            body=message.body,
            attachment_ids=[str(a) for a in message.attachment_ids],
            created_at=message.created_at,
        )


async def write_events(session: AsyncSession, events: list[OutboxEvent]) -> None:
    """Write outbox events by their deterministic ids (a re-run task's replaces an earlier
    attempt's, unless it was delivered: module doc)."""
    if not events:
        return
    existing = {
        row.id: row
        for row in await session.scalars(
            select(OutboxEventRow).where(OutboxEventRow.id.in_([e.id for e in events]))
        )
    }
    for event in events:
        row = existing.get(event.id)
        if row is not None and row.delivered_at is not None:
            continue
        _put(
            session,
            row,
            OutboxEventRow,
            id=event.id,
            type=event.type,
            org_id=event.org_id,
            case_id=event.case_id,
            occurred_at=event.occurred_at,
            payload=event.model_dump(mode="json")["payload"],
            delivered_at=None,
        )


def _put(session: AsyncSession, row: Any, model: type[Any], **columns: Any) -> None:
    """Insert a row, or give an existing one (written by an earlier attempt) these values."""
    if row is None:
        session.add(model(**columns))
        return
    for column, value in columns.items():
        setattr(row, column, value)
