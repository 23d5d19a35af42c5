"""The Tasks menu: the caller's open or completed tasks, filtered like ``GET /api/tasks``.

The page reads through the same store query as the API (``store.tasks.list_tasks``: one
visibility rule) and shows each task as the API does (``api.routes.tasks.task_view``: labels,
overdue, solution links from the catalogue)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.pagination import COUNT_LIMIT
from api.routes.tasks import task_view
from domain.enums import OrgKind
from domain.tasks import CATALOGUE, AccessLevel, TaskStatus, TaskType
from portal.forms import day_bound
from portal.rendering import list_paging, render
from portal.security import PortalUser
from store import tasks as task_store
from store.accounts import Principal, active_members

router = APIRouter()
PAGE_SIZE = 25


def type_options(principal: Principal) -> list[tuple[str, str]]:
    """The task types this side can have, as (code, label), by label."""
    side = {OrgKind.CREDITOR: AccessLevel.CREDITOR, OrgKind.PARTNER: AccessLevel.PARTNER}.get(
        principal.role
    )
    return sorted(
        (
            (spec.type.value, spec.label)
            for spec in CATALOGUE.values()
            if side is None or spec.access in (side, None)
        ),
        key=lambda option: option[1],
    )


@router.get("/tasks", response_class=HTMLResponse)
async def tasks_page(
    request: Request,
    principal: PortalUser,
    status: TaskStatus = TaskStatus.OPEN,
    type: str = "",
    due_from: str = "",
    due_to: str = "",
    assignee: str = "",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    errors: list[str] = []
    deadline_from = day_bound(due_from, principal.timezone, end=False, errors=errors)
    deadline_to = day_bound(due_to, principal.timezone, end=True, errors=errors)
    types: tuple[TaskType, ...] = ()
    if type:
        try:
            types = (TaskType(type),)
        except ValueError:
            errors.append(f"{type!r} is not a task type.")
    assignee_id = None
    if assignee:
        try:
            assignee_id = uuid.UUID(assignee)
        except ValueError:
            errors.append("Pick the assignee from the list.")
    async with request.app.state.sessions() as session:
        members = await active_members(session=session, org_id=principal.org_id)
        found = await task_store.list_tasks(
            session=session,
            principal=principal,
            filters=task_store.TaskFilter(
                status=status,
                types=types,
                assignee_id=assignee_id,
                deadline_from=deadline_from,
                deadline_to=deadline_to,
            ),
            offset=(page - 1) * PAGE_SIZE,
            limit=PAGE_SIZE,
            count_limit=COUNT_LIMIT + 1,
        )
    settings = request.app.state.settings
    query = {
        "status": status.value,
        "type": type,
        "due_from": due_from,
        "due_to": due_to,
        "assignee": assignee,
    }

    return render(
        request,
        "tasks.html",
        section="tasks",
        tasks=[task_view(record, settings) for record in found.records],
        filters={**query, "status": status.value},
        type_options=type_options(principal),
        members=members,
        errors=errors,
        **list_paging("/tasks", query, page, found.total, found.next is not None, "task"),
    )
