"""Tasks: the account-wide work queue, and the actions on one task.

Every action is an update to the workflow that owns the task; the response is read back from
the read model, which the workflow has updated before it answers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api.deps import CurrentPrincipal, SessionDep, SettingsDep, TemporalDep, visible_case
from api.errors import Problem, check_no_nul, invalid, not_found
from api.idempotency import idempotent
from api.pagination import COUNT_LIMIT, ListDep, ListPageInfo, list_page_info, position_after
from api.query import QueryTimestamp
from api.responses import json_response, trusted
from api.workflow_calls import update_workflow
from domain.accounts import OrgRef
from domain.base import ApiModel, IsoDatetime
from domain.cases import GenericTaskInput
from domain.enums import OrgKind
from domain.escalation import FiredStep
from domain.ids import case_workflow_id
from domain.tasks import (
    CATALOGUE,
    AccessLevel,
    AssignTaskInput,
    CloseTaskInput,
    PostponeTaskInput,
    Scope,
    TaskSpec,
    TaskStatus,
    TaskType,
    action_of,
    solution_url,
)
from domain.time import as_utc
from settings import Settings
from store import tasks as task_store
from store.accounts import Principal
from store.models import Organisation
from workflows.base import TaskOwnerWorkflow
from workflows.case import CaseWorkflow

router = APIRouter(prefix="/tasks", tags=["tasks"])

Check = Callable[[task_store.TaskRecord], Awaitable[None]]


class UserRef(ApiModel):
    id: UUID
    name: str | None
    email: str


class TaskActionView(ApiModel):
    """The call that solves the task, made from the task alone: ``method`` and ``path``, with
    exactly ``body`` as its JSON body (null: no body); ``needsMessage``: add the ``message``
    you write to that body (a chat reply, a complaint response)."""

    method: str
    path: str
    body: dict[str, Any] | None
    needs_message: bool


class ResolvedByView(ApiModel):
    kind: str
    user_id: UUID | None = None
    reason: str


class TaskView(ApiModel):
    """A task as seed 000 describes it."""

    id: str
    type: TaskType
    type_label: str
    title: str
    description: str
    status: TaskStatus
    case_id: UUID | None
    relationship_id: UUID | None = None  # a relationship chat's task
    case_reference: str | None
    lead_id: UUID | None = None
    deadline: dt.datetime | None
    original_deadline: dt.datetime | None
    overdue: bool
    date_created: dt.datetime
    date_solved: dt.datetime | None
    assignee: UserRef | None
    resolved_by: ResolvedByView | None
    access_level: AccessLevel
    scope: Scope
    solution_url: str
    action: TaskActionView | None
    # The escalation ladder's steps that fired, in order (domain/escalation.py).
    escalations: list[FiredStep] = []


class TaskList(ApiModel):
    """Debitura's task list: the page, and the tasks under ``tasks``."""

    page: ListPageInfo
    tasks: list[TaskView]


class PostponeBody(ApiModel):
    deadline: IsoDatetime
    reason: Annotated[str, Field(min_length=1, max_length=1000)]


class AssignBody(ApiModel):
    user_id: UUID | None


class CloseBody(ApiModel):
    reason: Annotated[str | None, Field(max_length=1000)] = None


class GenericTaskBody(ApiModel):
    case_id: UUID
    title: Annotated[str, Field(min_length=1, max_length=300)]
    description: Annotated[str, Field(max_length=4000)] = ""
    deadline: IsoDatetime | None = None
    access_level: AccessLevel | None = None  # ops only: which side the task is for


def task_view(record: task_store.TaskRecord, settings: Settings) -> TaskView:
    """The API shape of a task; labels, action and links come from the catalogue.

    Built without validation (``api.responses.trusted``): the row was validated when it was
    written, and validating every field of every listed task again cost more than the query."""
    row = record.task
    spec = CATALOGUE[TaskType(row.type)]
    action = action_of(spec, row.case_id, row.relationship_id, row.key or "")
    return trusted(
        TaskView,
        id=row.id,
        type=spec.type,
        type_label=spec.label,
        title=row.title,
        description=row.description,
        status=TaskStatus(row.status),
        case_id=row.case_id,
        relationship_id=row.relationship_id,
        case_reference=record.case_reference,
        lead_id=row.case_id if spec.on_lead else None,
        deadline=row.deadline,
        original_deadline=row.original_deadline,
        overdue=row.overdue_since is not None and row.status == TaskStatus.OPEN.value,
        date_created=row.date_created,
        date_solved=row.date_solved,
        assignee=trusted(
            UserRef, id=record.assignee.id, name=record.assignee.name, email=record.assignee.email
        )
        if record.assignee
        else None,
        resolved_by=ResolvedByView.model_validate(row.resolved_by) if row.resolved_by else None,
        escalations=[FiredStep.model_validate(step) for step in row.escalations or ()],
        access_level=AccessLevel(row.access_level),
        scope=Scope(row.scope),
        solution_url=solution_url(
            settings.portal_base_url,
            spec,
            task_id=row.id,
            case_id=row.case_id,
            relationship_id=row.relationship_id,
        ),
        action=trusted(TaskActionView, **action) if action else None,
    )


# ``status`` of both task lists: repeatable; omitted, the open tasks only (Debitura's queues).
StatusQuery = Annotated[
    list[TaskStatus] | None,
    Query(description="`Open` (the default when omitted) or `Solved`; both for every task."),
]
TypeQuery = Annotated[list[TaskType] | None, Query(description="A task type; repeatable.")]


def status_filter(statuses: list[TaskStatus] | None) -> TaskStatus | None:
    """The one status a task list is filtered by (None: every task): Open when omitted."""
    wanted = set(statuses or [TaskStatus.OPEN])
    return None if len(wanted) > 1 else wanted.pop()


@router.get("", response_model=TaskList)
async def list_tasks(
    principal: CurrentPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    page: ListDep,
    status: StatusQuery = None,
    type: TypeQuery = None,
    assignee: UUID | None = None,
    overdue: bool | None = None,
    deadline_from: Annotated[QueryTimestamp | None, Query(alias="deadlineFrom")] = None,
    deadline_to: Annotated[QueryTimestamp | None, Query(alias="deadlineTo")] = None,
    case_id: Annotated[UUID | None, Query(alias="caseId")] = None,
) -> Response:
    """Your organisation's open tasks (``status=Solved`` for the solved ones, both for all),
    account-level ones included, earliest deadline first. Page with ``page`` or, for deep
    pages, with ``after`` (the ``nextCursor`` of a page)."""
    filters = task_store.TaskFilter(
        status=status_filter(status),
        types=tuple(type or ()),
        assignee_id=assignee,
        overdue=overdue,
        deadline_from=as_utc(deadline_from) if deadline_from else None,
        deadline_to=as_utc(deadline_to) if deadline_to else None,
        case_id=case_id,
    )
    found = await task_store.list_tasks(
        session=session,
        principal=principal,
        filters=filters,
        offset=page.offset,
        limit=page.page_size,
        after=position_after(page, task_store.TaskPosition.parse),
        count_limit=COUNT_LIMIT + 1,
    )
    body = trusted(
        TaskList,
        tasks=[task_view(r, settings) for r in found.records],
        page=list_page_info(
            page,
            total=found.total,
            count=len(found.records),
            next_cursor=found.next.cursor() if found.next else None,
        ),
    )
    return json_response(body)


@router.get("/{task_id}", response_model=TaskView, responses={404: {}})
async def get_task(
    task_id: str, principal: CurrentPrincipal, session: SessionDep, settings: SettingsDep
) -> TaskView:
    """One of your organisation's tasks."""
    return task_view(await _visible_task(session, principal, task_id), settings)


async def _visible_task(
    session: SessionDep, principal: Principal, task_id: str
) -> task_store.TaskRecord:
    check_no_nul("taskId", task_id)
    record = await task_store.get_task(session=session, principal=principal, task_id=task_id)
    if record is None:
        raise not_found("Task")
    return record


@dataclass(frozen=True)
class TaskAction:
    """What every task action needs from the request, resolved once by FastAPI."""

    request: Request
    principal: Principal
    session: AsyncSession
    client: Client
    settings: Settings


async def _task_action(
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
    client: TemporalDep,
    settings: SettingsDep,
) -> TaskAction:
    return TaskAction(request, principal, session, client, settings)


TaskActionDep = Annotated[TaskAction, Depends(_task_action)]


async def _act(
    ctx: TaskAction,
    task_id: str,
    body: ApiModel,
    make_input: Callable[[task_store.TaskRecord], ApiModel],
    update: Callable[..., Any] = TaskOwnerWorkflow.close_task,
    *,
    check: Check | None = None,
) -> Response:
    """Common shape of a task action: find, check, update the owner, answer with the task."""
    session, principal = ctx.session, ctx.principal

    async def execute() -> Response:
        record = await _visible_task(session, principal, task_id)
        if record.task.status == TaskStatus.SOLVED.value:
            raise Problem(409, "task_not_open", f"Task {task_id} is already solved.")
        if check is not None:
            await check(record)
        await update_workflow(
            ctx.request, principal, ctx.client, record.task.workflow_id, update, make_input(record)
        )
        session.expire_all()
        fresh = await _visible_task(session, principal, task_id)
        return JSONResponse(task_view(fresh, ctx.settings).model_dump(mode="json"))

    return await idempotent(
        ctx.request, principal, {"taskId": task_id, **body.model_dump(mode="json")}, execute
    )


@router.post("/{task_id}/postpone", response_model=TaskView, responses={404: {}, 409: {}, 422: {}})
async def postpone_task(task_id: str, body: PostponeBody, ctx: TaskActionDep) -> Response:
    """Set a new deadline (it must be in the future); ``originalDeadline`` is kept and the
    reason is recorded with the ``task.postponed`` event."""
    if body.deadline.tzinfo is None:
        raise invalid("deadline", "must include a time zone offset, e.g. 2026-12-01T17:00:00Z")
    return await _act(
        ctx,
        task_id,
        body,
        lambda r: PostponeTaskInput(
            task_id=task_id,
            deadline=body.deadline,
            reason=body.reason,
            user_id=ctx.principal.user_id,
        ),
        TaskOwnerWorkflow.postpone_task,
    )


@router.post("/{task_id}/assign", response_model=TaskView, responses={404: {}, 409: {}, 422: {}})
async def assign_task(task_id: str, body: AssignBody, ctx: TaskActionDep) -> Response:
    """Assign the task to a user of the organisation that owns it (``userId: null`` unassigns)."""

    async def check(record: task_store.TaskRecord) -> None:
        if body.user_id is None:
            return
        member = await task_store.active_member(
            session=ctx.session, user_id=body.user_id, org_id=record.task.owner_org_id
        )
        if member is None:
            raise invalid("userId", "must be an active user of the organisation that owns the task")

    return await _act(
        ctx,
        task_id,
        body,
        lambda r: AssignTaskInput(
            task_id=task_id, assignee_id=body.user_id, user_id=ctx.principal.user_id
        ),
        TaskOwnerWorkflow.assign_task,
        check=check,
    )


async def _resolve_by_hand(
    ctx: TaskAction,
    task_id: str,
    body: CloseBody,
    *,
    kind: str,
    allowed: Callable[[TaskSpec], bool],
) -> Response:
    async def check(record: task_store.TaskRecord) -> None:
        spec = CATALOGUE[TaskType(record.task.type)]
        if not allowed(spec):
            raise Problem(
                409,
                "task_not_resolvable_by_hand",
                f"{spec.type.value} tasks cannot be {kind}; they resolve when "
                f"{spec.resolves_when}.",
            )

    return await _act(
        ctx,
        task_id,
        body,
        lambda r: CloseTaskInput(
            task_id=task_id, user_id=ctx.principal.user_id, reason=body.reason or kind
        ),
        check=check,
    )


@router.post("/{task_id}/close", response_model=TaskView, responses={404: {}, 409: {}})
async def close_task(task_id: str, body: CloseBody, ctx: TaskActionDep) -> Response:
    """Close a Generic task by hand."""
    return await _resolve_by_hand(
        ctx, task_id, body, kind="closed by hand", allowed=lambda s: s.type is TaskType.GENERIC
    )


@router.post("/{task_id}/done", response_model=TaskView, responses={404: {}, 409: {}})
async def mark_task_done(task_id: str, body: CloseBody, ctx: TaskActionDep) -> Response:
    """ "Mark as done" for tasks whose step happens outside the platform (e.g. MoreInfoNeeded)."""
    return await _resolve_by_hand(
        ctx, task_id, body, kind="marked as done", allowed=lambda s: s.mark_as_done
    )


@router.post("", status_code=201, response_model=TaskView, responses={403: {}, 404: {}, 422: {}})
async def create_generic_task(
    body: GenericTaskBody,
    request: Request,
    principal: CurrentPrincipal,
    session: SessionDep,
    client: TemporalDep,
    settings: SettingsDep,
) -> Response:
    """Create a Generic task on a case, for your own side (ops choose ``accessLevel``).

    A creditor creates it on its own case, a partner only on a case assigned to its
    organisation (403 ``not_a_party`` otherwise, e.g. on a case it only quotes on)."""

    async def execute() -> Response:
        row = await visible_case(session, body.case_id, principal)
        if body.deadline is not None and body.deadline.tzinfo is None:
            raise invalid("deadline", "must include a time zone offset")
        access = _generic_access(principal, body)
        owner_id = row.case.creditor_id if access is AccessLevel.CREDITOR else row.case.partner_id
        if principal.role is not OrgKind.OPS and owner_id != principal.org_id:
            # A partner that only quotes on the case (or no longer works it) sees it, but its
            # task would land in the queue of the partner working it, or of nobody.
            raise Problem(
                403,
                "not_a_party",
                "You can create a Generic task only for your own organisation, on a case it "
                "works on.",
            )
        if owner_id is None:
            raise invalid("accessLevel", "the case has no partner to give a Partner task to")
        owner = await session.get(Organisation, owner_id)
        assert owner is not None
        task = await update_workflow(
            request,
            principal,
            client,
            case_workflow_id(body.case_id),
            CaseWorkflow.create_generic_task,
            GenericTaskInput(
                owner=OrgRef(
                    id=owner.id, name=owner.name, country=owner.country, timezone=owner.timezone
                ),
                access_level=access,
                title=body.title,
                description=body.description,
                deadline=body.deadline,
                user_id=principal.user_id,
            ),
        )
        record = await task_store.get_task(session=session, principal=principal, task_id=task.id)
        if record is None:
            raise Problem(
                500, "projection_missing", "The task was created but is not readable yet."
            )
        return JSONResponse(task_view(record, settings).model_dump(mode="json"), status_code=201)

    return await idempotent(request, principal, body.model_dump(mode="json"), execute)


def _generic_access(principal: Principal, body: GenericTaskBody) -> AccessLevel:
    if principal.role is OrgKind.OPS:
        if body.access_level is None:
            raise invalid("accessLevel", "ops must say which side the task is for")
        return body.access_level
    own = task_store.ACCESS_OF_ROLE[principal.role]
    if body.access_level not in (None, own):
        raise invalid("accessLevel", f"you can only create {own.value} tasks")
    return own
