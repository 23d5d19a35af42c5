"""The Cases list (seed 004: filters by portal status, date range, debtor name and amount) and
the case page: status explained, the Action Items panel, case data and the timeline.

Both read through the API's store queries (``store.cases``: one visibility rule) and show
what the API shows (``api.routes.cases`` views, ``api.chat_views.timeline_item``)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from api.chat_views import CallOutcome, timeline_item
from api.errors import Problem, not_found
from api.pagination import COUNT_LIMIT
from api.routes import bank_accounts as bank_routes
from api.routes import case_work
from api.routes import tasks as task_routes
from api.routes.cases import _view as case_view
from api.routes.tasks import TaskView, task_view
from domain.cases import CaseView
from domain.enums import CaseStatus, Lifecycle, OrgKind, Party, SubStatus
from domain.ids import case_workflow_id
from domain.lifecycle import LIFECYCLE_MEANINGS
from domain.tasks import CATALOGUE, TaskStatus, TaskType
from domain.transitions import CLOSE_CODE_MEANINGS, CloseCode
from portal.actions import answer_of, notice_of, problem_messages
from portal.forms import amount, day_bound, end_of_day
from portal.invoke import invoke
from portal.rendering import list_paging, redirect, render
from portal.security import PREFIX, PortalUser, check_csrf, form_fields, form_text
from store import cases as case_store
from store import chat as chat_store
from store import tasks as task_store
from store.accounts import Principal, partner_organisations

router = APIRouter()
PAGE_SIZE = 25
# The Cases list's orders (seed 004: "sorting"): the query value, its label, the store's order.
SORTS: dict[str, tuple[str, case_store.CaseSort]] = {
    "newest": ("Newest first", case_store.NEWEST_FIRST),
    "oldest": ("Oldest first", case_store.CaseSort("created_at", descending=False)),
    "changed": ("Status changed, latest first", case_store.CaseSort("last_status_change", True)),
    "amount-high": ("Amount, highest first", case_store.CaseSort("amount_to_recover", True)),
    "amount-low": ("Amount, lowest first", case_store.CaseSort("amount_to_recover", False)),
    "due": ("Due date, earliest first", case_store.CaseSort("due_date", False)),
    "debtor": ("Debtor name, A to Z", case_store.CaseSort("debtor_name", False)),
}
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
    sort: str = "newest",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    zone = principal.timezone
    errors: list[str] = []
    if sort not in SORTS:
        errors.append(f"{sort!r} is not an order of the list.")
        sort = "newest"
    order = SORTS[sort][1]
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
            sort=order,
        )
    now = dt.datetime.now(dt.UTC)
    query = {
        "lifecycle": lifecycle.value if lifecycle else "",
        "debtor": debtor,
        "changed_from": changed_from,
        "changed_to": changed_to,
        "amount_from": amount_from,
        "amount_to": amount_to,
        "sort": sort,
    }

    rows = [
        {"view": case_view(row, now), "offered": _offered(principal, row.case.partner_id)}
        for row in found.rows
    ]
    return render(
        request,
        "cases.html",
        section="cases",
        rows=rows,
        filters=query,
        lifecycles=list(Lifecycle),
        sorts=[(key, label) for key, (label, _) in SORTS.items()],
        meanings=LIFECYCLE_MEANINGS,
        errors=errors,
        **list_paging("/cases", query, page, found.total, found.next is not None, "case"),
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
    open_form: str | None = None,
) -> Response:
    """The case page; with ``problem``, as the answer to a refused form (which keeps ``form``,
    open); ``open_form`` opens one of its forms (a task's solution page)."""
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
        tasks = [task_view(record, settings) for record in records]
        offered = _offered(principal, row.case.partner_id)
        open_types = {t.type for t in tasks if t.status is TaskStatus.OPEN}
        forms = available_forms(principal, view, offered, open_types)
        extra = await _form_data(request, principal, session, case_id, forms)
    items = action_items(tasks)
    close_code = CloseCode(view.close_code) if view.close_code in set(CloseCode) else None

    def timeline_url(number: int) -> str:
        return f"{PREFIX}/cases/{case_id}?timeline_page={number}#timeline"

    return render(
        request,
        "case.html",
        status_code=problem.status if problem else 200,
        section="cases",
        case=view,
        offered=offered,
        meaning=LIFECYCLE_MEANINGS[view.lifecycle],
        close_meaning=CLOSE_CODE_MEANINGS.get(close_code) if close_code else None,
        items=items,
        mark_as_done={spec.type.value for spec in CATALOGUE.values() if spec.mark_as_done},
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
        may_add_task=principal.role is not OrgKind.OPS and not offered,
        errors=problem_messages(problem) if problem else [],
        notice=None if problem else notice_of(request),
        form=form or {},
        forms=forms,
        open_form=open_form,
        statuses=[(s.value, s.value) for s in CaseStatus],
        sub_statuses=[(s.value, s.value) for s in SubStatus],
        close_codes=[(c.value, c.value) for c in CloseCode],
        parties=[(p.value, p.value) for p in Party],
        call_outcomes=[(o.value, o.value) for o in CallOutcome],
        **extra,
    )


FINISHED_STATUSES = (CaseStatus.RESOLVED, CaseStatus.CLOSED)
WORKED_STATUSES = (CaseStatus.IN_COLLECTION, CaseStatus.PAYMENT_PLAN, CaseStatus.ON_HOLD)


def available_forms(
    principal: Principal, case: CaseView, offered: bool, open_types: set[TaskType]
) -> list[str]:
    """The case forms (``portal.pages.case_actions.CASE_ACTIONS``) worth showing this user now.
    It only hides what cannot apply: whatever is shown, the API still decides."""
    status, finished = case.status, case.status in FINISHED_STATUSES
    forms: list[str] = []
    if principal.role is OrgKind.CREDITOR:
        if status is CaseStatus.CREATED:
            forms.append("correct")
        if case.bank_account_id is None and not finished:
            forms.append("bank-account")
        if case.sub_status is SubStatus.PENDING_QUOTE_SELECTION:
            forms.append("quote-selection")
        if finished and case.assigned_partner:
            forms.append("partner-review")
        if case.assigned_partner:
            forms.append("complaint")
        if not finished:
            forms.append("withdraw")
    elif principal.role is OrgKind.PARTNER:
        if offered:
            return ["quote", "quote-decline"]
        if status is CaseStatus.ASSIGNED:
            forms += ["accept", "reject", "quote"]
        if TaskType.UPDATE_CASE_STATUS in open_types:
            forms.append("survey")
        if status in WORKED_STATUSES:
            forms += ["status", "payment"]
        if status is CaseStatus.ON_HOLD:
            forms.append("resume")
        if TaskType.RESPOND_TO_COMPLAINT in open_types:
            forms.append("complaint-response")
        if open_types & {TaskType.RECORD_PAYMENT, TaskType.CHASE_PAYMENT}:
            forms.append("commission-payment")
        if status in WORKED_STATUSES or finished:
            forms += ["note", "call"]
    else:
        if status is CaseStatus.VALIDATED:
            forms += ["assign", "quote-request"]
        if status is CaseStatus.ASSIGNED or status in WORKED_STATUSES:
            forms.append("status")
        if status is CaseStatus.ON_HOLD:
            forms.append("resume")
    return forms


async def _form_data(
    request: Request,
    principal: Principal,
    session: AsyncSession,
    case_id: uuid.UUID,
    forms: list[str],
) -> dict[str, Any]:
    """What the shown forms list to choose from, read through the API's own routes."""
    data: dict[str, Any] = {"quotes": [], "complaints": [], "partners": [], "bank_accounts": []}
    if "quote-selection" in forms:
        data["quotes"] = await invoke(
            case_work.list_quotes, request, principal, session, case_id=case_id
        )
    if "complaint-response" in forms:
        data["complaints"] = await invoke(
            case_work.list_complaints, request, principal, session, case_id=case_id
        )
    if {"assign", "quote-request"} & set(forms):
        data["partners"] = await partner_organisations(session=session)
    if "bank-account" in forms:
        accounts = await invoke(bank_routes.list_bank_accounts, request, principal, session)
        data["bank_accounts"] = [
            (a.id, f"{a.iban} · {a.holder_name} · {a.currency_code}") for a in accounts
        ]
    return data


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
        return await invoke(task_routes.create_generic_task, request, principal, session, body=body)

    answer = await answer_of(request, command)
    if isinstance(answer, Problem):
        return await render_case(
            request,
            principal,
            case_id,
            problem=answer,
            form=form_fields(form),
            open_form="generic-task",
        )
    return redirect(f"{PREFIX}/tasks/{answer['id']}?done=created")
