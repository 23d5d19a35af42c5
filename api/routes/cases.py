"""Cases: submit, read, list, history (the actions on a case are ``case_commands``)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import WithJsonSchema
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
from api.routes.tasks import StatusQuery, TaskView, TypeQuery, status_filter, task_view
from api.workflow_calls import call, update_definition
from domain.accounts import BankAccountRef
from domain.base import DECIMAL_PATTERN, ApiModel, decimal_json_schema
from domain.cases import (
    CaseCreditor,
    CaseRecord,
    CaseSubmission,
    CaseView,
    CreditorDivision,
    Debtor,
    SubmitCaseInput,
)
from domain.enums import CaseStatus, DebtorType, Lifecycle, Party, SubStatus
from domain.ids import case_number, case_workflow_id
from domain.lifecycle import current_stage, lifecycle_named, lifecycle_names, lifecycle_of
from domain.time import as_utc, whole_days_between
from domain.transitions import CloseCode
from settings import Settings
from store import cases as case_store
from store import tasks as task_store
from store.accounts import Principal
from store.divisions import DivisionUnavailable
from temporal_client import case_start_operation
from workflows.case import CaseWorkflow

router = APIRouter(prefix="/cases", tags=["cases"])


class CaseList(ApiModel):
    """Debitura's ``InvoiceListDto``: the page, and the cases under ``cases``."""

    page: ListPageInfo
    cases: list[CaseView]


class HistoryView(ApiModel):
    """One status change as seed 002 shows it: ``changedBy`` is ``API``, ``System`` or the
    person's name (for a partner, ``Platform`` or ``Partner`` when withheld), and
    ``changedById`` the person's user id (null otherwise)."""

    seq: int
    timestamp: dt.datetime
    status: CaseStatus
    sub_status: SubStatus | None
    changed_by: str
    changed_by_id: UUID | None
    note: str | None


class CaseHistoryView(ApiModel):
    case_id: UUID
    history: list[HistoryView]


def history_view(change: case_store.ReadableChange) -> HistoryView:
    entry = change.entry
    return HistoryView(
        seq=entry.seq,
        timestamp=entry.timestamp,
        status=entry.status,
        sub_status=entry.sub_status,
        changed_by=change.changed_by,
        changed_by_id=change.user_id,
        note=entry.note,
    )


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
        creditor_division_id=case.creditor_division_id,
        creditor=trusted(
            CaseCreditor,
            id=case.creditor_id,
            division=trusted(CreditorDivision, id=case.creditor_division_id, name=row.division_name)
            if case.creditor_division_id
            else None,
        ),
        date_created=case.created_at,
        last_modified=case.updated_at,
    )


# Public: the case views of other routers (``case_references``) are this one.
case_view = _view


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


NOT_A_DIVISION = "is not an active division of your organisation"


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
    division_id = submission.creditor_division_id
    try:
        registration = await case_store.register_case(
            sessions=sessions,
            creditor_id=principal.org_id,
            creditor_reference=submission.creditor_reference,
            request_hash=digest,
            division_id=division_id,
        )
        if registration.request_hash != digest and not await _workflow_exists(
            client, case_workflow_id(registration.case_id)
        ):
            # An earlier attempt reserved the reference but never started the case (e.g.
            # Temporal was down): the reservation is free for this corrected submission.
            registration = await case_store.retake_registration(
                sessions=sessions,
                registration=registration,
                request_hash=digest,
                division_id=division_id,
            )
    except DivisionUnavailable:
        raise invalid("creditorDivisionId", NOT_A_DIVISION) from None
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


MAX_LISTED = 100


def _listed(field: str, values: list[str] | None) -> list[tuple[str, str]]:
    """A repeatable parameter's values, each also split at commas (Debitura's docs send
    ``Ids=a,b``, its SDK ``Ids=a&Ids=b``), with the field each error names (``ids[1]``); at
    most MAX_LISTED of them in all."""
    found: list[tuple[str, str]] = []
    for value in values or []:
        for part in value.split(","):
            found.append((f"{field}[{len(found)}]", part.strip()))
    if len(found) > MAX_LISTED:
        raise invalid(field, f"takes at most {MAX_LISTED} values")
    return found


def _merged(camel: list[str] | None, pascal: list[str] | None) -> list[str] | None:
    """The camelCase parameter's values with its PascalCase spelling's (Debitura's SDK)."""
    return None if camel is None and pascal is None else [*(camel or []), *(pascal or [])]


# The schema names the canonical spellings; other letter cases, spaces and commas are read too
# (as with currency codes).
LifecycleName = Annotated[
    str,
    WithJsonSchema({"type": "string", "enum": sorted(lifecycle_names())}),
]
CaseIdText = Annotated[str, WithJsonSchema({"type": "string", "format": "uuid"})]
StatusesQuery = Annotated[
    list[LifecycleName] | None,
    Query(
        alias="statuses",
        max_length=MAX_LISTED,
        description="Lifecycles, by label (`Pending Verification`) or name "
        "(`PendingVerification`), any letter case; repeatable or comma-separated. Debitura's "
        "`Leads`, `LeadsQuoteGiven` and `NeedsAdditionalDetails` are read as `Collecting "
        "Quotes`, `Pending Quote Selection` and `More Info Required`.",
    ),
]
IdsQuery = Annotated[
    list[CaseIdText] | None,
    Query(
        alias="ids",
        max_length=MAX_LISTED,
        description="Case ids (UUIDs); repeatable or comma-separated.",
    ),
]
DivisionIdsQuery = Annotated[
    list[CaseIdText] | None,
    Query(
        alias="divisionIds",
        max_length=MAX_LISTED,
        description="Division ids (`creditorDivisionId`, UUIDs): cases submitted for any of "
        "them; repeatable or comma-separated.",
    ),
]


def _lifecycles(values: list[str] | None) -> tuple[Lifecycle, ...]:
    lifecycles = []
    for field, value in _listed("statuses", values):
        lifecycle = lifecycle_named(value)
        if lifecycle is None:
            known = ", ".join(x.value for x in Lifecycle)
            raise invalid(field, f"{value[:40]!r} is not a lifecycle (one of: {known})")
        lifecycles.append(lifecycle)
    return tuple(dict.fromkeys(lifecycles))


def _ids(values: list[str] | None, name: str = "ids") -> tuple[UUID, ...]:
    ids = []
    for field, value in _listed(name, values):
        try:
            ids.append(UUID(value))
        except ValueError:
            raise invalid(field, f"{value[:40]!r} is not a UUID") from None
    return tuple(dict.fromkeys(ids))


async def _case_filter(
    status: Annotated[list[CaseStatus] | None, Query()] = None,
    lifecycle: Lifecycle | None = None,
    statuses: StatusesQuery = None,
    statuses_pascal: Annotated[
        list[LifecycleName] | None,
        Query(alias="Statuses", include_in_schema=False, max_length=MAX_LISTED),
    ] = None,
    ids: IdsQuery = None,
    ids_pascal: Annotated[
        list[CaseIdText] | None, Query(alias="Ids", include_in_schema=False, max_length=MAX_LISTED)
    ] = None,
    division_ids: DivisionIdsQuery = None,
    division_ids_pascal: Annotated[
        list[CaseIdText] | None,
        Query(alias="DivisionIds", include_in_schema=False, max_length=MAX_LISTED),
    ] = None,
    partner_id: Annotated[UUID | None, Query(alias="partnerId")] = None,
    debtor_name: Annotated[str | None, Query(alias="debtorName", max_length=200)] = None,
    amount_from: Annotated[AmountQuery | None, Query(alias="amountFrom")] = None,
    amount_to: Annotated[AmountQuery | None, Query(alias="amountTo")] = None,
    date_from: Annotated[QueryTimestamp | None, Query(alias="dateFrom")] = None,
    date_to: Annotated[QueryTimestamp | None, Query(alias="dateTo")] = None,
    last_modified_after: Annotated[QueryTimestamp | None, Query(alias="lastModifiedAfter")] = None,
) -> case_store.CaseFilter:
    """The case filters of the query string, shared by the list and the status summary.
    ``Statuses``, ``Ids`` and ``DivisionIds`` are Debitura's spellings of ``statuses``, ``ids``
    and ``divisionIds``."""
    check_no_nul("debtorName", debtor_name)
    return case_store.CaseFilter(
        statuses=status or [],
        lifecycle=lifecycle,
        lifecycles=_lifecycles(_merged(statuses, statuses_pascal)),
        ids=_ids(_merged(ids, ids_pascal)),
        division_ids=_ids(_merged(division_ids, division_ids_pascal), "divisionIds"),
        partner_id=partner_id,
        debtor_name=debtor_name,
        amount_from=amount_from,
        amount_to=amount_to,
        status_changed_from=_utc(date_from),
        status_changed_to=_utc(date_to),
        last_modified_after=_utc(last_modified_after),
    )


# ``Sort`` fields (Debitura's names, any letter case) and the columns they sort by.
SORT_FIELDS: dict[str, str] = {
    "datecreated": "created_at",
    "dateupdated": "updated_at",
    "duedate": "due_date",
    "date": "date",
    "amount": "amount_to_recover",
    "amounttorecover": "amount_to_recover",
    "grossamount": "amount_to_recover",
    "lifecycle": "lifecycle",
    "closecode": "close_code",
    "laststatuschange": "last_status_change",
    "debtorname": "debtor_name",
}
# The spellings the schema names (any letter case is read).
SORT_SPELLINGS = (
    "DateCreated",
    "DateUpdated",
    "DueDate",
    "Date",
    "Amount",
    "AmountToRecover",
    "GrossAmount",
    "Lifecycle",
    "CloseCode",
    "LastStatusChange",
    "DebtorName",
)
SORT_NAMES = "DateCreated, DateUpdated, DueDate, Date, Amount (or AmountToRecover, GrossAmount), Lifecycle, CloseCode, LastStatusChange, DebtorName"
_SORT_KEY = "(" + "|".join(SORT_SPELLINGS) + ")(:(asc|desc))?"
SortText = Annotated[
    str, WithJsonSchema({"type": "string", "pattern": f"^{_SORT_KEY}(,{_SORT_KEY})*$"})
]
SortQuery = Annotated[
    SortText | None,
    Query(
        alias="sort",
        max_length=300,
        description="`Field[:asc|desc][,Field2[:asc|desc]]...`, ascending unless `:desc`; "
        f"fields (any letter case): {SORT_NAMES}. Default: newest first (`DateCreated:desc`).",
    ),
]


def parse_sort(text: str) -> tuple[case_store.CaseSort, ...]:
    """``Sort`` as the list's order: 422 naming ``sort`` for an unknown field or direction
    (Debitura ignores those; a list in another order than asked for is wrong data)."""
    keys: list[case_store.CaseSort] = []
    for part in text.split(","):
        name, _, direction = part.strip().partition(":")
        field = SORT_FIELDS.get(name.strip().casefold())
        if field is None:
            raise invalid(
                "sort", f"{name.strip()[:40]!r} is not a sort field (one of: {SORT_NAMES})"
            )
        if direction.strip().casefold() not in ("", "asc", "desc"):
            raise invalid("sort", f"{direction.strip()[:10]!r} is not a direction (asc or desc)")
        keys.append(case_store.CaseSort(field, descending=direction.strip().casefold() == "desc"))
    return tuple(keys)


async def _case_order(
    sort: SortQuery = None,
    sort_pascal: Annotated[
        SortText | None, Query(alias="Sort", include_in_schema=False, max_length=300)
    ] = None,
) -> tuple[case_store.CaseSort, ...] | None:
    text = sort if sort is not None else sort_pascal
    return parse_sort(text) if text is not None else None


@router.get("", response_model=CaseList)
async def list_cases(
    principal: CurrentPrincipal,
    session: SessionDep,
    page: ListDep,
    filters: Annotated[case_store.CaseFilter, Depends(_case_filter)],
    order: Annotated[tuple[case_store.CaseSort, ...] | None, Depends(_case_order)],
) -> Response:
    """The cases you may see, newest first (or in ``sort``'s order). ``dateFrom``/``dateTo``
    bound the last status change. Page with ``page`` (``limit`` is an alias of ``pageSize``)
    or, newest first, with ``after`` (the ``nextCursor`` of a page)."""
    newest_first = order is None or order == (case_store.NEWEST_FIRST,)
    if page.after is not None and not newest_first:
        raise invalid("after", "pages the newest-first order only: page a sorted list by page")
    found = await case_store.list_cases(
        session=session,
        principal=principal,
        filters=filters,
        offset=page.offset,
        limit=page.page_size,
        after=position_after(page, case_store.CasePosition.parse),
        count_limit=COUNT_LIMIT + 1,
        sort=order,
    )
    now = dt.datetime.now(dt.UTC)
    return json_response(
        trusted(
            CaseList,
            cases=[_view(r, now) for r in found.rows],
            page=list_page_info(
                page,
                total=found.total,
                count=len(found.rows),
                # A cursor is a place in the newest-first order only.
                next_cursor=found.next.cursor() if found.next and newest_first else None,
            ),
        )
    )


class StatusSummaryView(ApiModel):
    """Seed 002's status summary."""

    total_cases: int
    status_breakdown: dict[CaseStatus, int]  # every status, zero included
    lifecycle_breakdown: dict[Lifecycle, int]  # caseloop's: every lifecycle, zero included
    finished_cases: int  # Resolved or Closed
    average_resolution_time: float | None  # days from creation to Resolved/Closed, finished
    success_rate: float | None  # share of finished cases closed as Paid or Partially paid


RECOVERED = (CloseCode.PAID.value, CloseCode.PARTIALLY_PAID.value)


@router.get("/analytics/status-summary", response_model=StatusSummaryView)
async def status_summary(
    principal: CurrentPrincipal,
    session: SessionDep,
    filters: Annotated[case_store.CaseFilter, Depends(_case_filter)],
) -> StatusSummaryView:
    """Seed 002's figures over the cases you may see: ``totalCases``, ``statusBreakdown``
    (cases per status), ``averageResolutionTime`` (days) and ``successRate``; the filters of
    ``GET /api/cases`` apply."""
    summary = await case_store.status_summary(session=session, principal=principal, filters=filters)
    by_status = dict.fromkeys(CaseStatus, 0)
    by_lifecycle = dict.fromkeys(Lifecycle, 0)
    for (status_value, sub_value), count in summary.counts.items():
        status = CaseStatus(status_value)
        sub = SubStatus(sub_value) if sub_value else None
        by_status[status] += count
        by_lifecycle[lifecycle_of(status, sub)] += count
    finished = len(summary.close_codes)
    return StatusSummaryView(
        total_cases=sum(by_status.values()),
        status_breakdown=by_status,
        lifecycle_breakdown=by_lifecycle,
        finished_cases=finished,
        average_resolution_time=round(sum(summary.resolution_days) / finished, 1)
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
    changes = await case_store.history(session=session, principal=principal, case_id=case_id)
    return CaseHistoryView(case_id=case_id, history=[history_view(c) for c in changes])


@router.get("/{case_id}/tasks", response_model=list[TaskView], responses={401: {}, 404: {}})
async def get_case_tasks(
    case_id: UUID,
    principal: CurrentPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    status: StatusQuery = None,
    type: TypeQuery = None,
) -> list[TaskView]:
    """Your side's open tasks on this case (``status=Solved`` for the solved ones, both for
    all), open ones first, whole (account-level tasks never appear); ``type`` repeats."""
    await visible_case(session, case_id, principal)
    records = await task_store.case_tasks(
        session=session,
        principal=principal,
        case_id=case_id,
        status=status_filter(status),
        types=tuple(type or ()),
    )
    return [task_view(r, settings) for r in records]
