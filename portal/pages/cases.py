"""The Cases list (seed 004: filters by portal status, date range, debtor name and amount) and
the case page: status explained, the Action Items panel, case data and the timeline.

Both read through the API's store queries (``store.cases``: one visibility rule) and show
what the API shows (``api.routes.cases`` views, ``api.chat_views.timeline_item``)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from api.chat_views import timeline_item
from api.errors import Problem, not_found
from api.pagination import COUNT_LIMIT
from api.routes import tasks as task_routes
from api.routes.cases import _view as case_view
from api.routes.tasks import TaskView, task_view
from domain.enums import Lifecycle, OrgKind
from domain.ids import case_workflow_id
from domain.lifecycle import LIFECYCLE_MEANINGS
from domain.transitions import CLOSE_CODE_MEANINGS, CloseCode
from portal.actions import answer_of, notice_of, problem_messages
from portal.forms import amount, day_bound, end_of_day
from portal.rendering import redirect, render
from portal.security import PREFIX, PortalUser, check_csrf, form_text
from store import cases as case_store
from store import chat as chat_store
from store import tasks as task_store
from store.accounts import Principal

router = APIRouter()
PAGE_SIZE = 25
TIMELINE_PAGE = 50


@router.get("/cases", response_class=HTMLResponse)
async def cases_page(
    request: Request,
    principal: PortalUser,
    lifecycle: Lifecycle | None = None,
    debtor: Annotated[str, Query(max_length=200)] = "",
    changed_from: str = "",
    changed_to: str = "",
    amount_from: str = "",
    amount_to: str = "",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    zone = principal.timezone
    errors: list[str] = []
    filters = case_store.CaseFilter(
        statuses=[],
        lifecycle=lifecycle,
        debtor_name=debtor.replace("\x00", "").strip() or None,
        amount_from=amount(amount_from, errors),
        amount_to=amount(amount_to, errors),
        status_changed_from=day_bound(changed_from, zone, end=False, errors=errors),
        status_changed_to=day_bound(changed_to, zone, end=True, errors=errors),
    )
    async with request.app.state.sessions() as session:
        found = await case_store.list_cases(
            session=session,
            principal=principal,
            filters=filters,
            offset=(page - 1) * PAGE_SIZE,
            limit=PAGE_SIZE,
            count_limit=COUNT_LIMIT + 1,
        )
    now = dt.datetime.now(dt.UTC)
    query = {
        "lifecycle": lifecycle.value if lifecycle else "",
        "debtor": debtor,
        "changed_from": changed_from,
        "changed_to": changed_to,
        "amount_from": amount_from,
        "amount_to": amount_to,
    }

    def page_url(number: int) -> str:
        return f"{PREFIX}/cases?" + urlencode({**query, "page": number})

    rows = [
        {"view": case_view(row, now), "offered": _offered(principal, row.case.partner_id)}
        for row in found.rows
    ]
    total = found.total
    shown = f"{total}" if total <= COUNT_LIMIT else f"more than {COUNT_LIMIT}"
    return render(
        request,
        "cases.html",
        section="cases",
        rows=rows,
        filters=query,
        lifecycles=list(Lifecycle),
        meanings=LIFECYCLE_MEANINGS,
        errors=errors,
        total_label=f"{shown} case{'s' if total != 1 else ''}"
        + (f", page {page}" if page > 1 or found.next else ""),
        previous_url=page_url(page - 1) if page > 1 else None,
        next_url=page_url(page + 1) if found.next else None,
    )


def _offered(principal: Principal, partner_id: uuid.UUID | None) -> bool:
    """A partner sees a case it is asked to quote on (a lead) beside those assigned to it."""
    return principal.role is OrgKind.PARTNER and partner_id != principal.org_id


def action_items(tasks: list[TaskView]) -> dict[str, list[TaskView]]:
    """A case's open tasks grouped as its Action Items panel shows them (SPEC.md "Tasks")."""
    open_tasks = [t for t in tasks if t.status.value == "Open"]
    return {
        "overdue": [t for t in open_tasks if t.overdue],
        "upcoming": [t for t in open_tasks if not t.overdue],
    }


@router.get("/cases/{case_id}", response_class=HTMLResponse)
async def case_page(
    request: Request,
    principal: PortalUser,
    case_id: uuid.UUID,
    timeline_page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    return await render_case(request, principal, case_id, timeline_page=timeline_page)


async def render_case(
    request: Request,
    principal: Principal,
    case_id: uuid.UUID,
    *,
    timeline_page: int = 1,
    problem: Problem | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    """The case page; with ``problem``, as the answer to a refused form (which keeps ``form``)."""
    settings = request.app.state.settings
    async with request.app.state.sessions() as session:
        row = await case_store.get_case(session=session, case_id=case_id, principal=principal)
        if row is None:
            raise not_found("Case")
        records = await task_store.case_tasks(session=session, principal=principal, case_id=case_id)
        entries, total = await chat_store.timeline(
            session=session,
            principal=principal,
            case_id=case_id,
            offset=(timeline_page - 1) * TIMELINE_PAGE,
            limit=TIMELINE_PAGE,
        )
    view = case_view(row, dt.datetime.now(dt.UTC))
    items = action_items([task_view(record, settings) for record in records])
    close_code = CloseCode(view.close_code) if view.close_code in set(CloseCode) else None

    def timeline_url(number: int) -> str:
        return f"{PREFIX}/cases/{case_id}?timeline_page={number}#timeline"

    return render(
        request,
        "case.html",
        status_code=problem.status if problem else 200,
        section="cases",
        case=view,
        offered=_offered(principal, row.case.partner_id),
        meaning=LIFECYCLE_MEANINGS[view.lifecycle],
        close_meaning=CLOSE_CODE_MEANINGS.get(close_code) if close_code else None,
        items=items,
        pending=len(items["overdue"]) + len(items["upcoming"]),
        timeline=[timeline_item(entry) for entry in entries],
        workflow_url=settings.workflow_ui_url(case_workflow_id(case_id))
        if principal.role is OrgKind.OPS
        else None,
        timeline_previous=timeline_url(timeline_page - 1) if timeline_page > 1 else None,
        timeline_next=timeline_url(timeline_page + 1)
        if timeline_page * TIMELINE_PAGE < total
        else None,
        # A Generic task is for the caller's own organisation, on a case it works on.
        may_add_task=principal.role is not OrgKind.OPS
        and not _offered(principal, row.case.partner_id),
        errors=problem_messages(problem) if problem else [],
        notice=None if problem else notice_of(request),
        form=form or {},
    )


@router.post("/cases/{case_id}/tasks", dependencies=[Depends(check_csrf)])
async def create_generic_task(
    request: Request, principal: PortalUser, case_id: uuid.UUID
) -> Response:
    """A Generic task on the case for the caller's own organisation (``POST /api/tasks``)."""
    form = await request.form()
    due = form_text(form, "deadline")

    async def command(session: AsyncSession) -> Any:
        body = task_routes.GenericTaskBody(
            case_id=case_id,
            title=form_text(form, "title").strip(),
            description=form_text(form, "description").strip(),
            deadline=end_of_day(due, principal.timezone) if due else None,
        )
        return await task_routes.create_generic_task(
            body,
            request,
            principal,
            session,
            request.app.state.temporal,
            request.app.state.settings,
        )

    answer = await answer_of(request, command)
    if isinstance(answer, Problem):
        fields = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
        return await render_case(request, principal, case_id, problem=answer, form=fields)
    return redirect(f"{PREFIX}/tasks/{answer['id']}?done=created")
