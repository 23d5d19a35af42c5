"""One task: what it is, where it is solved, and the Tasks menu's actions on it (postpone with a
reason, reassign within the organisation, mark as done where the catalogue allows, close a
Generic task), each through the API's own command (``api.routes.tasks``)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import Problem, invalid, not_found
from api.routes import tasks as task_routes
from domain.enums import OrgKind
from domain.tasks import CATALOGUE, TaskStatus, TaskType
from portal.actions import notice_of, problem_messages, run
from portal.forms import end_of_day
from portal.invoke import invoke
from portal.rendering import redirect, render
from portal.security import PREFIX, PortalUser, check_csrf, form_fields, form_text
from store import tasks as task_store
from store.accounts import Principal, active_members

router = APIRouter()


async def _page(
    request: Request,
    principal: Principal,
    task_id: str,
    *,
    problem: Problem | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    settings = request.app.state.settings
    async with request.app.state.sessions() as session:
        record = await task_store.get_task(session=session, principal=principal, task_id=task_id)
        if record is None:
            raise not_found("Task")
        members = await active_members(session=session, org_id=record.task.owner_org_id)
    task = task_routes.task_view(record, settings)
    spec = CATALOGUE[task.type]
    is_open = task.status is TaskStatus.OPEN
    may_act = is_open and principal.role is not OrgKind.OPS
    zone = ZoneInfo(principal.timezone)
    return render(
        request,
        "task.html",
        status_code=problem.status if problem else 200,
        section="tasks",
        task=task,
        spec=spec,
        own_page=task.type is TaskType.GENERIC,
        members=members,
        may_act=may_act,
        may_mark_done=may_act and spec.mark_as_done,
        may_close=may_act and task.type is TaskType.GENERIC,
        default_day=(dt.datetime.now(zone) + dt.timedelta(days=7)).date().isoformat(),
        notice=None if problem else notice_of(request),
        errors=problem_messages(problem) if problem else [],
        form=form or {},
    )


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
async def task_page(request: Request, principal: PortalUser, task_id: str) -> Response:
    return await _page(request, principal, task_id)


async def _act(
    request: Request,
    principal: Principal,
    task_id: str,
    notice: str,
    route: Callable[..., Awaitable[Any]],
    body: Callable[[], BaseModel],
) -> Response:
    """Run the API's task ``route`` on ``body()`` (built from the form, so what it refuses is
    answered like what the route refuses) and show the task again, or what was refused."""
    form = form_fields(await request.form())

    async def command(session: AsyncSession) -> Any:
        return await invoke(route, request, principal, session, body=body(), task_id=task_id)

    problem = await run(request, command)
    if problem is not None:
        return await _page(request, principal, task_id, problem=problem, form=form)
    return redirect(f"{PREFIX}/tasks/{task_id}?done={notice}")


@router.post("/tasks/{task_id}/postpone", dependencies=[Depends(check_csrf)])
async def postpone(request: Request, principal: PortalUser, task_id: str) -> Response:
    form = await request.form()

    def body() -> BaseModel:
        return task_routes.PostponeBody(
            deadline=end_of_day(form_text(form, "deadline"), principal.timezone),
            reason=form_text(form, "reason").strip(),
        )

    return await _act(request, principal, task_id, "postponed", task_routes.postpone_task, body)


@router.post("/tasks/{task_id}/assign", dependencies=[Depends(check_csrf)])
async def reassign(request: Request, principal: PortalUser, task_id: str) -> Response:
    form = await request.form()
    chosen = form_text(form, "user_id")

    def body() -> BaseModel:
        try:
            user_id = uuid.UUID(chosen) if chosen else None
        except ValueError:
            raise invalid("userId", "pick a colleague from the list") from None
        return task_routes.AssignBody(user_id=user_id)

    notice = "assigned" if chosen else "unassigned"
    return await _act(request, principal, task_id, notice, task_routes.assign_task, body)


@router.post("/tasks/{task_id}/done", dependencies=[Depends(check_csrf)])
async def mark_done(request: Request, principal: PortalUser, task_id: str) -> Response:
    form = await request.form()
    return await _act(
        request, principal, task_id, "done", task_routes.mark_task_done, lambda: _closing(form)
    )


@router.post("/tasks/{task_id}/close", dependencies=[Depends(check_csrf)])
async def close(request: Request, principal: PortalUser, task_id: str) -> Response:
    form = await request.form()
    return await _act(
        request, principal, task_id, "closed", task_routes.close_task, lambda: _closing(form)
    )


def _closing(form: Any) -> BaseModel:
    """The body of "Mark as done" and of closing a Generic task: the optional note."""
    return task_routes.CloseBody(reason=form_text(form, "reason").strip() or None)
