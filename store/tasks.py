"""Task queries for the API. Who sees which task is decided here, in ``visible_tasks``."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Row, Select, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import OrgKind
from domain.tasks import AccessLevel, Scope, TaskStatus, TaskType
from store.accounts import Principal
from store.cases import visible_to
from store.models import Case, TaskRow, User

ACCESS_OF_ROLE = {OrgKind.CREDITOR: AccessLevel.CREDITOR, OrgKind.PARTNER: AccessLevel.PARTNER}


def visible_tasks(principal: Principal) -> ColumnElement[bool]:
    """A user sees their own organisation's tasks of their own side; ops see all tasks.

    A task on a case is visible only while its case is (``store.cases.visible_to``, the one
    case-visibility rule): a partner that lost the case (rejected it, declined or lost the quote,
    or the case went to another partner) no longer sees its tasks on it, solved or open, while
    the partner that worked a finished case keeps its tasks there. Tasks without a case
    (account tasks, relationship chat tasks) follow the owner rule alone.
    """
    if principal.role is OrgKind.OPS:
        return true()
    visible_cases = select(Case.id).where(visible_to(principal)).correlate(None)
    return (
        (TaskRow.owner_org_id == principal.org_id)
        & (TaskRow.access_level == ACCESS_OF_ROLE[principal.role].value)
        & (TaskRow.case_id.is_(None) | TaskRow.case_id.in_(visible_cases))
    )


@dataclass(frozen=True)
class TaskRecord:
    task: TaskRow
    case_reference: str | None
    assignee: User | None


@dataclass(frozen=True)
class TaskFilter:
    status: TaskStatus | None = None
    types: tuple[TaskType, ...] = ()
    assignee_id: uuid.UUID | None = None
    overdue: bool | None = None
    deadline_from: dt.datetime | None = None
    deadline_to: dt.datetime | None = None
    case_id: uuid.UUID | None = None


def _select() -> Select[TaskRow, str, User]:
    return (
        select(TaskRow, Case.creditor_reference, User)
        .outerjoin(Case, Case.id == TaskRow.case_id)
        .outerjoin(User, User.id == TaskRow.assignee_id)
    )


def _record(row: Row[TaskRow, str, User]) -> TaskRecord:
    task, case_reference, assignee = row
    return TaskRecord(task, case_reference, assignee)


def _clauses(f: TaskFilter) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if f.status is not None:
        clauses.append(TaskRow.status == f.status.value)
    if f.types:
        clauses.append(TaskRow.type.in_([t.value for t in f.types]))
    if f.assignee_id is not None:
        clauses.append(TaskRow.assignee_id == f.assignee_id)
    if f.overdue is True:
        clauses.append(
            TaskRow.overdue_since.is_not(None) & (TaskRow.status == TaskStatus.OPEN.value)
        )
    elif f.overdue is False:
        clauses.append(TaskRow.overdue_since.is_(None))
    if f.deadline_from is not None:
        clauses.append(TaskRow.deadline >= f.deadline_from)
    if f.deadline_to is not None:
        clauses.append(TaskRow.deadline <= f.deadline_to)
    if f.case_id is not None:
        clauses.append(TaskRow.case_id == f.case_id)
    return clauses


async def list_tasks(
    *, session: AsyncSession, principal: Principal, filters: TaskFilter, offset: int, limit: int
) -> tuple[list[TaskRecord], int]:
    """A page of visible tasks, earliest deadline first (no deadline last), and the total."""
    where = [visible_tasks(principal), *_clauses(filters)]
    total = await session.scalar(select(func.count()).select_from(TaskRow).where(*where)) or 0
    rows = await session.execute(
        _select()
        .where(*where)
        .order_by(TaskRow.deadline.is_(None), TaskRow.deadline, TaskRow.date_created, TaskRow.id)
        .offset(offset)
        .limit(limit)
    )
    return [_record(row) for row in rows], total


async def case_tasks(
    *, session: AsyncSession, principal: Principal, case_id: uuid.UUID
) -> list[TaskRecord]:
    """The caller's tasks on one case (never account-level ones), open first, then by deadline."""
    rows = await session.execute(
        _select()
        .where(
            visible_tasks(principal), TaskRow.case_id == case_id, TaskRow.scope == Scope.CASE.value
        )
        .order_by(TaskRow.status, TaskRow.deadline.is_(None), TaskRow.deadline, TaskRow.id)
    )
    return [_record(row) for row in rows]


async def get_task(
    *, session: AsyncSession, principal: Principal, task_id: str
) -> TaskRecord | None:
    row = (
        await session.execute(_select().where(TaskRow.id == task_id, visible_tasks(principal)))
    ).first()
    return _record(row) if row else None


async def active_member(
    *, session: AsyncSession, user_id: uuid.UUID, org_id: uuid.UUID
) -> User | None:
    """The user if they are an active member of ``org_id``."""
    return await session.scalar(
        select(User).where(User.id == user_id, User.org_id == org_id, User.active)
    )
