"""Task queries for the API. Who sees which task is decided here, in ``visible_tasks``."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    Table,
    and_,
    case,
    exists,
    literal,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.dml import Update

from domain.enums import OrgKind
from domain.tasks import AccessLevel, Scope, TaskStatus, TaskType
from store.accounts import Principal
from store.cases import visible_to_org
from store.cursor import Cursor, count_up_to, encode_cursor, key_of, timestamp
from store.models import NO_DEADLINE, Case, TaskRow, User

ACCESS_OF_ROLE = {OrgKind.CREDITOR: AccessLevel.CREDITOR, OrgKind.PARTNER: AccessLevel.PARTNER}
# The queue's order: earliest deadline first, no deadline last (``TaskRow.sort_deadline``).
ORDER = (TaskRow.sort_deadline, TaskRow.date_created, TaskRow.id)
LIST_NAME = "tasks"


def visible_tasks(principal: Principal) -> ColumnElement[bool]:
    """A user sees their own organisation's tasks of their own side; ops see all tasks.

    A task on a case is visible only while its case is (``store.cases.visible_to_org``, the one
    case-visibility rule): a partner that lost the case (rejected it, declined or lost the quote,
    or the case went to another partner) no longer sees its tasks on it, solved or open, while
    the partner that worked a finished case keeps its tasks there. Tasks without a case
    (account tasks, relationship chat tasks) follow the owner rule alone.

    Whether the owner sees the task's case is stored on the row (``case_visible``, kept by
    ``refresh_case_tasks``), so the rule is three columns of one index.
    """
    if principal.role is OrgKind.OPS:
        return true()
    return and_(
        TaskRow.owner_org_id == principal.org_id,
        TaskRow.access_level == ACCESS_OF_ROLE[principal.role].value,
        TaskRow.case_visible == true(),
    )


def _owner_sees_case() -> ColumnElement[bool]:
    """Whether a task's owner, on the task's side, sees the task's case (True without one)."""

    def sees(role: OrgKind) -> ColumnElement[bool]:
        return exists(
            select(Case.id).where(
                Case.id == TaskRow.case_id, visible_to_org(role, TaskRow.owner_org_id)
            )
        )

    return case(
        (TaskRow.case_id.is_(None), true()),
        (TaskRow.access_level == AccessLevel.CREDITOR.value, sees(OrgKind.CREDITOR)),
        else_=sees(OrgKind.PARTNER),
    )


async def refresh_case_tasks(
    session: AsyncSession | AsyncConnection,
    case_ids: set[uuid.UUID],
    *,
    task_ids: set[str] | None = None,
) -> None:
    """Bring the stored case columns of these cases' tasks (or of these tasks only, after a
    projection wrote them) up to date (``case_visible``, ``case_reference``): after a
    projection wrote tasks, a case's partner or its open invitations. Rows already up to date
    are not rewritten."""
    if not case_ids or task_ids == set():
        return
    where = [TaskRow.case_id.in_(case_ids)]
    if task_ids is not None:
        where.append(TaskRow.id.in_(task_ids))
    await session.execute(_REFRESH.where(*where))


def _refresh() -> Update:
    sees = _owner_sees_case()
    reference = select(Case.creditor_reference).where(Case.id == TaskRow.case_id).scalar_subquery()
    # On the table, not the entity: the ORM's bulk-update machinery has nothing to do here.
    tasks: Table = TaskRow.__table__  # type: ignore[assignment]
    return (
        update(tasks)
        .where(
            or_(TaskRow.case_visible != sees, TaskRow.case_reference.is_distinct_from(reference))
        )
        .values(case_visible=sees, case_reference=reference)
    )


_REFRESH = _refresh()


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


def _select() -> Select[TaskRow, User]:
    # The assignee is read by primary key for the rows of the page only (the list's Limit
    # sits below this join).
    return select(TaskRow, User).outerjoin(User, User.id == TaskRow.assignee_id)


def _record(row: Row[TaskRow, User]) -> TaskRecord:
    task, assignee = row
    return TaskRecord(task, task.case_reference, assignee)


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
    if f.deadline_from is not None or f.deadline_to is not None:
        # On the sort key, so the queue's index serves the range; NO_DEADLINE is no deadline.
        clauses.append(TaskRow.sort_deadline < NO_DEADLINE)
    if f.deadline_from is not None:
        clauses.append(TaskRow.sort_deadline >= f.deadline_from)
    if f.deadline_to is not None:
        clauses.append(TaskRow.sort_deadline <= f.deadline_to)
    if f.case_id is not None:
        clauses.append(TaskRow.case_id == f.case_id)
    return clauses


@dataclass(frozen=True)
class TaskPosition:
    """A place in the queue: the sort key of the last task a page showed."""

    sort_deadline: dt.datetime
    date_created: dt.datetime
    task_id: str

    @classmethod
    def parse(cls, cursor: Cursor) -> TaskPosition:
        deadline, created, task_id = key_of(cursor, LIST_NAME, 3)
        return cls(timestamp(deadline), timestamp(created), task_id)

    @classmethod
    def of(cls, task: TaskRow) -> TaskPosition:
        return cls(task.sort_deadline, task.date_created, task.id)

    def cursor(self) -> str:
        key = (self.sort_deadline.isoformat(), self.date_created.isoformat(), self.task_id)
        return encode_cursor(LIST_NAME, key)


@dataclass(frozen=True)
class TaskPage:
    records: list[TaskRecord]
    total: int  # counted up to the caller's count_limit
    next: TaskPosition | None  # where the next page starts, if a task follows


async def list_tasks(
    *,
    session: AsyncSession,
    principal: Principal,
    filters: TaskFilter,
    offset: int,
    limit: int,
    after: TaskPosition | None = None,
    count_limit: int,
) -> TaskPage:
    """A page of visible tasks, earliest deadline first (no deadline last), starting at
    ``offset`` or after ``after``, and the total counted up to ``count_limit``."""
    where = [visible_tasks(principal), *_clauses(filters)]
    total = await count_up_to(session, select(TaskRow.id).where(*where), count_limit)
    if total == 0:  # nothing to read (a page query would walk the index for nothing)
        return TaskPage([], 0, None)
    query = _select().where(*where)
    if after is not None:
        query = query.where(
            tuple_(*ORDER)
            > tuple_(
                literal(after.sort_deadline, TaskRow.sort_deadline.type),
                literal(after.date_created, TaskRow.date_created.type),
                literal(after.task_id, TaskRow.id.type),
            )
        )
    rows = await session.execute(query.order_by(*ORDER).offset(offset).limit(limit + 1))
    records = [_record(row) for row in rows]
    more = len(records) > limit
    records = records[:limit]
    return TaskPage(records, total, TaskPosition.of(records[-1].task) if more else None)


async def case_tasks(
    *, session: AsyncSession, principal: Principal, case_id: uuid.UUID
) -> list[TaskRecord]:
    """The caller's tasks on one case (never account-level ones), open first, then by deadline."""
    rows = await session.execute(
        _select()
        .where(
            visible_tasks(principal), TaskRow.case_id == case_id, TaskRow.scope == Scope.CASE.value
        )
        .order_by(TaskRow.status, TaskRow.sort_deadline, TaskRow.id)
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
