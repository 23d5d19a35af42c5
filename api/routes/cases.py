"""Cases: submit, read, list, history (the actions on a case are ``case_commands``)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.common import RawValue

from api.deps import (
    CreditorPrincipal,
    CurrentPrincipal,
    SessionDep,
    SettingsDep,
    TemporalDep,
    end_read,
    not_in_future,
    visible_case,
)
from api.errors import FieldError, Problem, check_no_nul, invalid
from api.idempotency import idempotent
from api.pagination import COUNT_LIMIT, ListDep, ListPageInfo, list_page_info, position_after
from api.query import QueryTimestamp
from api.responses import json_response, trusted
from api.routes.tasks import TaskView, task_view
from api.workflow_calls import call, update_definition
from domain.accounts import BankAccountRef
from domain.base import DECIMAL_PATTERN, ApiModel, decimal_json_schema
from domain.cases import (
    CaseRecord,
    CaseSubmission,
    CaseView,
    Debtor,
    HistoryEntry,
    SubmitCaseInput,
)
from domain.enums import CaseStatus, DebtorType, Lifecycle, Party, SubStatus
from domain.ids import case_number, case_workflow_id
from domain.lifecycle import current_stage, lifecycle_of
from domain.time import as_utc, whole_days_between
from domain.transitions import CloseCode
from settings import Settings
from store import cases as case_store
from store import tasks as task_store
from store.accounts import Principal
from temporal_client import case_start_operation
from workflows.case import CaseWorkflow

router = APIRouter(prefix="/cases", tags=["cases"])


class CaseList(ApiModel):
    data: list[CaseView]
    page: ListPageInfo


class CaseHistoryView(ApiModel):
    case_id: UUID
    history: list[HistoryEntry]


def _view(row: case_store.CaseRow, now: dt.datetime) -> CaseView:
    """The API shape of a case, built without validation (``api.responses.trusted``): the row was
    validated when it was written, and validating it again (the debtor's e-mail address above
    all) cost more per listed case than the query."""
    case = row.case
    status = CaseStatus(case.status)
    sub_status = SubStatus(case.sub_status) if case.sub_status else None
    return trusted(
        CaseView,
        case_id=case.id,
        case_number=case.case_number,
        status=status,
        sub_status=sub_status,
        lifecycle=lifecycle_of(status, sub_status),
        last_status_change=case.last_status_change,
        current_stage=current_stage(status, sub_status),
        days_in_current_status=whole_days_between(case.last_status_change, now),
        assigned_partner=row.partner_name,
        close_code=case.close_code,
        waiting_for=_waiting_for(case.details),
        creditor_reference=case.creditor_reference,
        currency_code=case.currency_code,
        amount_to_recover=case.amount_to_recover,
        date=case.date,
        due_date=case.due_date,
        claim_description=case.claim_description,
        debtor=_debtor(case.debtor),
        bank_account_id=case.bank_account_id,
        date_created=case.created_at,
        last_modified=case.updated_at,
    )


def _waiting_for(details: dict[str, Any]) -> Party | None:
    """``CaseDetails.waiting_for`` of the stored details (under its alias or its name)."""
    value = details.get("waitingFor", details.get("waiting_for"))
    return None if value is None else Party(value)


def _debtor(stored: dict[str, Any]) -> Debtor:
    """The stored debtor (``Debtor.model_dump``), as the model, without validating it again."""
    debtor = Debtor.model_construct(**stored)
    debtor.type = DebtorType(debtor.type)
    return debtor


async def _workflow_exists(client: Client, workflow_id: str) -> bool:
    try:
        await call(client.get_workflow_handle(workflow_id).describe(), changes=False)
    except Problem as problem:
        if problem.status == 404:
            return False
        raise
    return True


async def _bank_account_ref(
    session: AsyncSession, principal: Principal, bank_account_id: UUID
) -> BankAccountRef:
    account = await case_store.bank_account_of(
        session=session, bank_account_id=bank_account_id, org_id=principal.org_id
    )
    if account is None:
        raise invalid("bankAccountId", "is not a bank account of your organisation")
    return BankAccountRef(id=account.id, currency_code=account.currency_code)


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    """Query timestamps without an offset (or plain dates) are read as UTC."""
    return as_utc(moment) if moment is not None else None


def _submission_hash(submission: CaseSubmission) -> str:
    canonical = json.dumps(submission.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def _submit(
    *,
    request: Request,
    principal: Principal,
    submission: CaseSubmission,
    client: Client,
    settings: Settings,
    session: AsyncSession,
) -> UUID:
    """Start the case's workflow (or rejoin it on a retry) and wait until it is projected.
    ``session`` is the request's: its read ends before anything is written."""
    sessions = request.app.state.sessions
    not_in_future(submission.date, "date", principal)
    # Read before the start: a signature after this read reaches the case from the account.
    facts = await case_store.start_facts(
        session=session, org_id=principal.org_id, bank_account_id=submission.bank_account_id
    )
    await end_read()
    bank_account = None
    if submission.bank_account_id is not None:
        if facts.bank_account_currency is None:
            raise invalid("bankAccountId", "is not a bank account of your organisation")
        bank_account = BankAccountRef(
            id=submission.bank_account_id, currency_code=facts.bank_account_currency
        )
    digest = _submission_hash(submission)
    registration = await case_store.register_case(
        sessions=sessions,
        creditor_id=principal.org_id,
        creditor_reference=submission.creditor_reference,
        request_hash=digest,
    )
    if registration.request_hash != digest and not await _workflow_exists(
        client, case_workflow_id(registration.case_id)
    ):
        # An earlier attempt reserved the reference but never started the case (e.g. Temporal
        # was down): the reservation is free for this corrected submission.
        registration = await case_store.retake_registration(
            sessions=sessions, registration=registration, request_hash=digest
        )
    if registration.request_hash != digest:
        raise Problem(
            422,
            "duplicate_creditor_reference",
            f"creditorReference {submission.creditor_reference!r} is already used by case "
            f"{registration.case_id}.",
            errors=[FieldError("creditorReference", "is already used by another case")],
            extra={"caseId": str(registration.case_id)},
        )
    record = CaseRecord(
        case_id=registration.case_id,
        case_number=case_number(registration.id, registration.created_at.year),
        creditor=principal.org_ref,
        submitted_by=principal.user_id,
        submission=submission,
        bank_account=bank_account,
    )
    start = case_start_operation(
        record, task_queue=settings.temporal_task_queue, contract_signed=facts.contract_signed
    )
    await call(
        client.execute_update_with_start_workflow(
            update_definition(CaseWorkflow.submit)[0],
            SubmitCaseInput(requested_by=principal.user_id),
            start_workflow_operation=start,
            id="submit",
            # Answered from the read model: the case record the update returns is not needed.
            result_type=RawValue,
            rpc_timeout=dt.timedelta(seconds=settings.api_update_timeout_seconds),
        )
    )
    return record.case_id


@router.post(
    "",
    status_code=201,
    response_model=CaseView,
    responses={401: {}, 403: {}, 422: {}, 503: {}},
)
async def create_case(
    request: Request,
    submission: CaseSubmission,
    principal: CreditorPrincipal,
    client: TemporalDep,
    settings: SettingsDep,
    session: SessionDep,
) -> Response:
    """Submit an unpaid invoice as a case (creditors only).

    Starts the case's workflow and answers 201 once the case is readable. Submitting the same
    body again (same creditorReference) returns the same case; a different body with a used
    creditorReference is rejected with 422 ``duplicate_creditor_reference``.
    """

    async def execute() -> Response:
        case_id = await _submit(
            request=request,
            principal=principal,
            submission=submission,
            client=client,
            settings=settings,
            session=session,
        )
        row = await case_store.get_case(session=session, case_id=case_id, principal=principal)
        if row is None:  # the update returns only after the projection: this is a bug if hit
            raise Problem(
                500, "projection_missing", "The case was created but is not readable yet."
            )
        return json_response(
            _view(row, dt.datetime.now(dt.UTC)),
            status_code=201,
            headers={"Location": f"/api/cases/{case_id}"},
        )

    return await idempotent(request, principal, submission.model_dump(mode="json"), execute)


AmountQuery = Annotated[Decimal, decimal_json_schema(DECIMAL_PATTERN)]


async def _case_filter(
    status: Annotated[list[CaseStatus] | None, Query()] = None,
    lifecycle: Lifecycle | None = None,
    partner_id: Annotated[UUID | None, Query(alias="partnerId")] = None,
    debtor_name: Annotated[str | None, Query(alias="debtorName", max_length=200)] = None,
    amount_from: Annotated[AmountQuery | None, Query(alias="amountFrom")] = None,
    amount_to: Annotated[AmountQuery | None, Query(alias="amountTo")] = None,
    date_from: Annotated[QueryTimestamp | None, Query(alias="dateFrom")] = None,
    date_to: Annotated[QueryTimestamp | None, Query(alias="dateTo")] = None,
    last_modified_after: Annotated[QueryTimestamp | None, Query(alias="lastModifiedAfter")] = None,
) -> case_store.CaseFilter:
    """The case filters of the query string, shared by the list and the status summary."""
    check_no_nul("debtorName", debtor_name)
    return case_store.CaseFilter(
        statuses=status or [],
        lifecycle=lifecycle,
        partner_id=partner_id,
        debtor_name=debtor_name,
        amount_from=amount_from,
        amount_to=amount_to,
        status_changed_from=_utc(date_from),
        status_changed_to=_utc(date_to),
        last_modified_after=_utc(last_modified_after),
    )


@router.get("", response_model=CaseList)
async def list_cases(
    principal: CurrentPrincipal,
    session: SessionDep,
    page: ListDep,
    filters: Annotated[case_store.CaseFilter, Depends(_case_filter)],
) -> Response:
    """The cases you may see, newest first. ``dateFrom``/``dateTo`` bound the last status change.
    Page with ``page`` or, for deep pages, with ``after`` (the ``nextCursor`` of a page)."""
    found = await case_store.list_cases(
        session=session,
        principal=principal,
        filters=filters,
        offset=page.offset,
        limit=page.page_size,
        after=position_after(page, case_store.CasePosition.parse),
        count_limit=COUNT_LIMIT + 1,
    )
    now = dt.datetime.now(dt.UTC)
    return json_response(
        trusted(
            CaseList,
            data=[_view(r, now) for r in found.rows],
            page=list_page_info(
                page,
                total=found.total,
                count=len(found.rows),
                next_cursor=found.next.cursor() if found.next else None,
            ),
        )
    )


class StatusCount(ApiModel):
    status: CaseStatus
    count: int


class LifecycleCount(ApiModel):
    lifecycle: Lifecycle
    count: int


class StatusSummaryView(ApiModel):
    total: int
    by_status: list[StatusCount]
    by_lifecycle: list[LifecycleCount]
    finished: int  # Resolved or Closed
    average_resolution_days: float | None  # creation to Resolved/Closed, over finished cases
    success_rate: float | None  # share of finished cases closed as Paid or Partially paid


RECOVERED = (CloseCode.PAID.value, CloseCode.PARTIALLY_PAID.value)


@router.get("/analytics/status-summary", response_model=StatusSummaryView)
async def status_summary(
    principal: CurrentPrincipal,
    session: SessionDep,
    filters: Annotated[case_store.CaseFilter, Depends(_case_filter)],
) -> StatusSummaryView:
    """Counts per status and lifecycle, average resolution days and success rate of the cases
    you may see; the filters of ``GET /api/cases`` apply."""
    summary = await case_store.status_summary(session=session, principal=principal, filters=filters)
    by_status: dict[CaseStatus, int] = {}
    by_lifecycle: dict[Lifecycle, int] = {}
    for (status_value, sub_value), count in summary.counts.items():
        status = CaseStatus(status_value)
        sub = SubStatus(sub_value) if sub_value else None
        by_status[status] = by_status.get(status, 0) + count
        lifecycle = lifecycle_of(status, sub)
        by_lifecycle[lifecycle] = by_lifecycle.get(lifecycle, 0) + count
    finished = len(summary.close_codes)
    return StatusSummaryView(
        total=sum(by_status.values()),
        by_status=[StatusCount(status=s, count=by_status.get(s, 0)) for s in CaseStatus],
        by_lifecycle=[LifecycleCount(lifecycle=x, count=by_lifecycle.get(x, 0)) for x in Lifecycle],
        finished=finished,
        average_resolution_days=round(sum(summary.resolution_days) / finished, 1)
        if finished
        else None,
        success_rate=round(sum(c in RECOVERED for c in summary.close_codes) / finished, 3)
        if finished
        else None,
    )


@router.get("/{case_id}", response_model=CaseView, responses={401: {}, 404: {}})
async def get_case(case_id: UUID, principal: CurrentPrincipal, session: SessionDep) -> CaseView:
    """One case: status fields (seed 002), portal lifecycle and the submitted data."""
    return _view(await visible_case(session, case_id, principal), dt.datetime.now(dt.UTC))


@router.get("/{case_id}/history", response_model=CaseHistoryView, responses={401: {}, 404: {}})
async def get_history(
    case_id: UUID, principal: CurrentPrincipal, session: SessionDep
) -> CaseHistoryView:
    """Every status change of the case, oldest first. A partner reads the note and author of
    a change only when its own organisation, the creditor, ``API`` or ``System`` made it."""
    await visible_case(session, case_id, principal)
    entries = await case_store.history(session=session, principal=principal, case_id=case_id)
    return CaseHistoryView(case_id=case_id, history=entries)


@router.get("/{case_id}/tasks", response_model=list[TaskView], responses={401: {}, 404: {}})
async def get_case_tasks(
    case_id: UUID, principal: CurrentPrincipal, session: SessionDep, settings: SettingsDep
) -> list[TaskView]:
    """Your side's tasks on this case, open ones first (account-level tasks never appear)."""
    await visible_case(session, case_id, principal)
    records = await task_store.case_tasks(session=session, principal=principal, case_id=case_id)
    return [task_view(r, settings) for r in records]
