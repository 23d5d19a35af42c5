"""Task queries for the API. Who sees which task is decided here, in ``visible_tasks``."""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Row,
    Select,
    Table,
    and_,
    bindparam,
    case,
    exists,
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
from store.cursor import (
    COUNT_LIMIT_PARAM,
    Cursor,
    Rows,
    bounded_count,
    counted,
    encode_cursor,
    key_of,
    start_read,
    timestamp,
)
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
    return and_(*_owner_rule(principal.org_id, ACCESS_OF_ROLE[principal.role].value))


def _owner_rule(
    org_id: uuid.UUID | ColumnElement[uuid.UUID], access: str | ColumnElement[str]
) -> list[ColumnElement[bool]]:
    """``visible_tasks`` for a non-ops caller: values, or bound parameters (``_list_statement``)."""
    return [
        TaskRow.owner_org_id == org_id,
        TaskRow.access_level == access,
        TaskRow.case_visible == true(),
    ]


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
    if task_ids is None:
        await session.execute(_REFRESH_CASES, {"case_ids": list(case_ids)})
    else:
        await session.execute(
            _REFRESH_TASKS, {"case_ids": list(case_ids), "task_ids": list(task_ids)}
        )


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
# Built once, the ids bound per call (expanding parameters): a statement built per projection
# costs the worker its construction and a fresh cache-key traversal every time.
_REFRESH_CASES = _REFRESH.where(TaskRow.case_id.in_(bindparam("case_ids", expanding=True)))
_REFRESH_TASKS = _REFRESH_CASES.where(TaskRow.id.in_(bindparam("task_ids", expanding=True)))


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


@dataclass(frozen=True)
class _Shape:
    """Which conditions a list query has: its statement is built once per shape, with bound
    parameters for the values (``_list_statement``), so a request only binds values."""

    ops: bool  # ops see every task (no visibility condition)
    status: bool = False
    types: bool = False
    assignee: bool = False
    overdue: bool | None = None
    deadline_from: bool = False
    deadline_to: bool = False
    case: bool = False
    after: bool = False

    @classmethod
    def of(cls, principal: Principal, f: TaskFilter, *, after: bool) -> _Shape:
        return cls(
            ops=principal.role is OrgKind.OPS,
            status=f.status is not None,
            types=bool(f.types),
            assignee=f.assignee_id is not None,
            overdue=f.overdue,
            deadline_from=f.deadline_from is not None,
            deadline_to=f.deadline_to is not None,
            case=f.case_id is not None,
            after=after,
        )


def _filter_clauses(shape: _Shape) -> list[ColumnElement[bool]]:
    """The conditions of ``TaskFilter``, with a bound parameter for each value (``_values``)."""
    clauses: list[ColumnElement[bool]] = []
    if shape.status:
        clauses.append(TaskRow.status == bindparam("status", type_=TaskRow.status.type))
    if shape.types:
        clauses.append(TaskRow.type.in_(bindparam("types", expanding=True)))
    if shape.assignee:
        clauses.append(TaskRow.assignee_id == bindparam("assignee", type_=TaskRow.assignee_id.type))
    if shape.overdue is True:
        clauses.append(
            TaskRow.overdue_since.is_not(None) & (TaskRow.status == TaskStatus.OPEN.value)
        )
    elif shape.overdue is False:
        clauses.append(TaskRow.overdue_since.is_(None))
    if shape.deadline_from or shape.deadline_to:
        # On the sort key, so the queue's index serves the range; NO_DEADLINE is no deadline.
        clauses.append(TaskRow.sort_deadline < NO_DEADLINE)
    if shape.deadline_from:
        clauses.append(
            TaskRow.sort_deadline >= bindparam("deadline_from", type_=TaskRow.sort_deadline.type)
        )
    if shape.deadline_to:
        clauses.append(
            TaskRow.sort_deadline <= bindparam("deadline_to", type_=TaskRow.sort_deadline.type)
        )
    if shape.case:
        clauses.append(TaskRow.case_id == bindparam("case", type_=TaskRow.case_id.type))
    return clauses


def _values(f: TaskFilter) -> dict[str, Any]:
    """The bound values of ``_filter_clauses``."""
    return {
        "status": f.status.value if f.status is not None else None,
        "types": [t.value for t in f.types],
        "assignee": f.assignee_id,
        "deadline_from": f.deadline_from,
        "deadline_to": f.deadline_to,
        "case": f.case_id,
    }


def _visible_clauses(shape: _Shape) -> list[ColumnElement[bool]]:
    """``visible_tasks`` with the organisation and side as bound parameters ``org``, ``access``."""
    if shape.ops:
        return []
    return _owner_rule(
        bindparam("org", type_=TaskRow.owner_org_id.type),
        bindparam("access", type_=TaskRow.access_level.type),
    )


def _bounded_total(shape: _Shape) -> ColumnElement[int]:
    return bounded_count(
        select(TaskRow.id).where(*_visible_clauses(shape), *_filter_clauses(shape))
    )


@functools.lru_cache(maxsize=256)
def _count_statement(shape: _Shape) -> Select[Any]:
    """The bounded count alone (for a page past the last one), built once per shape."""
    return select(_bounded_total(shape))


@functools.lru_cache(maxsize=256)
def _list_statement(shape: _Shape) -> Rows:
    """The page and its bounded count for one shape of list request, built once."""
    where = [*_visible_clauses(shape), *_filter_clauses(shape)]
    total = _bounded_total(shape)
    query = _select().where(*where)
    if shape.after:
        query = query.where(
            tuple_(*ORDER)
            > tuple_(
                bindparam("after_deadline", type_=TaskRow.sort_deadline.type),
                bindparam("after_created", type_=TaskRow.date_created.type),
                bindparam("after_id", type_=TaskRow.id.type),
            )
        )
    page = (
        query.order_by(*ORDER)
        .offset(bindparam("offset", type_=Integer))
        .limit(bindparam("limit", type_=Integer))
    )
    return counted(page, total)


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
    shape = _Shape.of(principal, filters, after=after is not None)
    params: dict[str, Any] = {
        **_values(filters),
        "offset": offset,
        "limit": limit + 1,
        COUNT_LIMIT_PARAM: count_limit,
    }
    if not shape.ops:
        params["org"] = principal.org_id
        params["access"] = ACCESS_OF_ROLE[principal.role].value
    if after is not None:
        params |= {
            "after_deadline": after.sort_deadline,
            "after_created": after.date_created,
            "after_id": after.task_id,
        }
    await start_read(session)
    rows = (await session.execute(_list_statement(shape), params)).all()
    records = [TaskRecord(task, task.case_reference, assignee) for task, assignee, _ in rows]
    if rows:
        total = rows[0].total
    elif offset == 0 and after is None:
        total = 0  # the first page is empty only when nothing matches
    else:  # past the last page: count on its own
        total = await session.scalar(_count_statement(replace(shape, after=False)), params) or 0
    more = len(records) > limit
    records = records[:limit]
    return TaskPage(records, total, TaskPosition.of(records[-1].task) if more else None)


async def case_tasks(
    *,
    session: AsyncSession,
    principal: Principal,
    case_id: uuid.UUID,
    status: TaskStatus | None = None,
    types: tuple[TaskType, ...] = (),
) -> list[TaskRecord]:
    """The caller's tasks on one case (never account-level ones), open first, then by
    deadline; of one status and of some types only, when given."""
    where = [
        visible_tasks(principal),
        TaskRow.case_id == case_id,
        TaskRow.scope == Scope.CASE.value,
    ]
    if status is not None:
        where.append(TaskRow.status == status.value)
    if types:
        where.append(TaskRow.type.in_([t.value for t in types]))
    rows = await session.execute(
        _select().where(*where).order_by(TaskRow.status, TaskRow.sort_deadline, TaskRow.id)
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
