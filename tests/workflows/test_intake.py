"""Case intake and its tasks on the time-skipping server, as creditors, partners and ops see them.

Time only moves when a test says so (``ts_env.sleep``): waiting on ``handle.result()`` would hand
time-skipping to the SDK, which is unreliable on this server and never needed here. What the tests
check is what users and ops see: the read model (``cases``, ``case_history``, ``tasks``,
``outbox_events``), the workflows' search attributes, and ``get_state`` queries. Each test's
workflows are terminated when it ends (``ts_leaves_no_workflows``), so none is left to hold the
shared server's clock.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import holidays
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.common.v1 import SearchAttributes, WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.converter import decode_typed_search_attributes
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain import search_attributes as sa
from domain.accounts import BankAccountRef, SignContractInput
from domain.cases import (
    AssignBankAccountInput,
    AssignPartnerInput,
    CaseRecord,
    CaseSubmission,
    CorrectCaseInput,
    PartnerDecisionInput,
)
from domain.enums import CaseStatus, SubStatus
from domain.errors import INVALID_DEADLINE, TASK_NOT_RESOLVABLE_BY_HAND
from domain.ids import creditor_workflow_id
from domain.tasks import CloseTaskInput, PostponeTaskInput, TaskStatus, TaskType
from store.db import transaction
from store.models import BankAccount, Case, CaseHistory, Organisation, OutboxEventRow, TaskRow
from temporal_client import case_start_operation
from tests.support import Actor, case_body, case_start, new_case_record, submit_case
from workflows.case import CaseWorkflow
from workflows.creditor import CreditorWorkflow

T = TypeVar("T")
COPENHAGEN = ZoneInfo("Europe/Copenhagen")
# A debtor a partner cannot reach: no postal address and no e-mail.
UNREACHABLE_DEBTOR = {"type": "Private", "name": "Jens Hansen", "countryAlpha2": "DK"}


# --- helpers -----------------------------------------------------------------------------------


async def eventually(check: Callable[[], Awaitable[T]], *, seconds: float = 20) -> T:
    """Run ``check`` until its assertions hold (work between two workflows is asynchronous)."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + seconds
    while True:
        try:
            return await check()
        except AssertionError:
            if loop.time() >= give_up:
                raise
            await asyncio.sleep(0.05)


async def open_case(
    env: WorkflowEnvironment,
    creditor: Actor,
    task_queue: str,
    *,
    bank_account: BankAccountRef | None = None,
    history_limit: int | None = None,
    **submission: object,
) -> tuple[WorkflowHandle[Any, Any], CaseRecord]:
    """Create a case as ``POST /api/cases`` does; returns its workflow and the submit result."""
    record = new_case_record(creditor, **submission)
    record.bank_account = bank_account
    start = case_start(record, task_queue=task_queue, history_limit=history_limit)
    returned = await submit_case(env.client, start, requested_by=creditor.principal.user_id)
    return await start.workflow_handle(), returned


def creditor_account(env: WorkflowEnvironment, creditor: Actor) -> WorkflowHandle[Any, Any]:
    return env.client.get_workflow_handle(creditor_workflow_id(creditor.org_id))


async def register_bank_account(
    sessions: async_sessionmaker[AsyncSession], creditor: Actor, currency: str = "DKK"
) -> BankAccountRef:
    """A bank account of the creditor, as ``POST /api/bank-accounts`` stores it."""
    account_id = uuid.uuid4()
    async with transaction(sessions) as session:
        session.add(
            BankAccount(
                id=account_id,
                org_id=creditor.org_id,
                iban="DK5000400440116243",
                holder_name="Acme ApS",
                currency_code=currency,
                created_at=dt.datetime.now(dt.UTC),
            )
        )
    return BankAccountRef(id=account_id, currency_code=currency)


async def task_rows(sessions: async_sessionmaker[AsyncSession], type: TaskType) -> list[TaskRow]:
    """The read model's tasks of one type (each test starts on an empty database)."""
    query = select(TaskRow).where(TaskRow.type == type.value).order_by(TaskRow.date_created)
    async with sessions() as session:
        return list(await session.scalars(query))


async def case_row(sessions: async_sessionmaker[AsyncSession], case_id: uuid.UUID) -> Case:
    async with sessions() as session:
        row = await session.get(Case, case_id)
    assert row is not None
    return row


async def history_of(
    sessions: async_sessionmaker[AsyncSession], case_id: uuid.UUID
) -> list[CaseHistory]:
    async with sessions() as session:
        return list(
            await session.scalars(
                select(CaseHistory).where(CaseHistory.case_id == case_id).order_by(CaseHistory.seq)
            )
        )


async def events_of(
    sessions: async_sessionmaker[AsyncSession], type: str, *, task_id: str
) -> list[OutboxEventRow]:
    async with sessions() as session:
        rows = await session.scalars(
            select(OutboxEventRow)
            .where(OutboxEventRow.type == type)
            .order_by(OutboxEventRow.occurred_at)
        )
        return [row for row in rows if row.payload.get("taskId") == task_id]


async def attributes(handle: WorkflowHandle[Any, Any], client: Client) -> dict[str, object]:
    """The task search attributes ops filter on in the Temporal UI.

    Read from the raw description: the Java test server keeps an unset attribute as a null payload
    (``binary/null``; a real server removes it), which ``handle.describe()`` fails to decode. Here
    such a payload reads as unset, which is what ops see on a real server.
    """
    raw = await client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(
            namespace=client.namespace, execution=WorkflowExecution(workflow_id=handle.id)
        )
    )
    fields = raw.workflow_execution_info.search_attributes.indexed_fields
    present = SearchAttributes(
        indexed_fields={
            name: payload
            for name, payload in fields.items()
            if payload.metadata.get("encoding") != b"binary/null"
        }
    )
    found = decode_typed_search_attributes(present)
    return {
        "CaseStatus": found.get(sa.CASE_STATUS),
        "PartnerId": found.get(sa.PARTNER_ID),
        "OpenTaskTypes": found.get(sa.OPEN_TASK_TYPES),
        "NextDeadline": found.get(sa.NEXT_DEADLINE),
        "OverdueTaskCount": found.get(sa.OVERDUE_TASK_COUNT),
        "WaitingOn": found.get(sa.WAITING_ON),
        "NextStepAt": found.get(sa.NEXT_STEP_AT),
    }


def same_instant(attribute: object, expected: dt.datetime) -> bool:
    """A datetime search attribute equal to ``expected`` to the second (servers differ on
    sub-second precision)."""
    assert isinstance(attribute, dt.datetime)
    return abs(attribute - expected) < dt.timedelta(seconds=1)


async def advance_to_a_quiet_friday_morning(env: WorkflowEnvironment) -> dt.date:
    """Move the server's clock to 10:00 Copenhagen on the next Friday followed by two weeks
    without a Danish public holiday; returns that Friday."""
    now = await env.get_current_time()
    day = (now + dt.timedelta(minutes=1)).astimezone(COPENHAGEN).date()
    danish_holidays = holidays.country_holidays("DK", years=range(day.year, day.year + 2))

    def quiet_friday(candidate: dt.date) -> bool:
        fortnight = (candidate + dt.timedelta(days=n) for n in range(15))
        return candidate.weekday() == 4 and not any(d in danish_holidays for d in fortnight)

    morning = dt.datetime.combine(day, dt.time(10), COPENHAGEN)
    while not quiet_friday(day) or morning <= now:
        day += dt.timedelta(days=1)
        morning = dt.datetime.combine(day, dt.time(10), COPENHAGEN)
    await env.sleep(morning - now)
    return day


async def validated_case(
    env: WorkflowEnvironment,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    task_queue: str,
    *,
    history_limit: int | None = None,
    **submission: object,
) -> WorkflowHandle[Any, Any]:
    """A case that passed intake: valid data, a bank account and a signed contract."""
    account = await register_bank_account(sessions, creditor)
    handle, record = await open_case(
        env, creditor, task_queue, bank_account=account, history_limit=history_limit, **submission
    )
    await creditor_account(env, creditor).execute_update(
        CreditorWorkflow.sign_contract, SignContractInput(user_id=creditor.principal.user_id)
    )

    async def validated() -> None:
        row = await case_row(sessions, record.case_id)
        assert (row.status, row.sub_status) == ("Validated", None)

    await eventually(validated)
    return handle


# --- account-level tasks ------------------------------------------------------------------------


async def test_cases_without_bank_account_share_one_task_due_in_seven_danish_business_days(
    ts_env: WorkflowEnvironment,
    ts_worker: Worker,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
) -> None:
    friday = await advance_to_a_quiet_friday_morning(ts_env)
    first, _ = await open_case(ts_env, creditor, task_queue)

    async def one_open_task(title: str) -> TaskRow:
        rows = await task_rows(sessions, TaskType.ASSIGN_BANK_ACCOUNT)
        assert [(row.status, row.title) for row in rows] == [("Open", title)]
        assert rows[0].deadline is not None
        return rows[0]

    task = await eventually(lambda: one_open_task("Assign a bank account to 1 case"))
    # The creditor's account task: not attached to a case, owned by the creditor.
    assert (task.owner_org_id, task.access_level, task.scope, task.case_id) == (
        creditor.org_id,
        "Creditor",
        "Account",
        None,
    )
    assert task.workflow_id == creditor_workflow_id(creditor.org_id)
    assert task.date_created.astimezone(COPENHAGEN).date() == friday
    # Seven business days after a Friday with no holiday in sight: Mon-Fri, then Mon and Tue, so
    # the Tuesday of the week after next, at the end of the day in Copenhagen.
    tuesday = friday + dt.timedelta(days=11)
    expected = dt.datetime.combine(tuesday, dt.time(23, 59, 59), COPENHAGEN).astimezone(dt.UTC)
    assert task.deadline == task.original_deadline == expected

    second, _ = await open_case(ts_env, creditor, task_queue)
    retitled = await eventually(lambda: one_open_task("Assign a bank account to 2 cases"))
    assert (retitled.id, retitled.deadline) == (task.id, expected)

    account = await register_bank_account(sessions, creditor, "DKK")
    assign = AssignBankAccountInput(bank_account=account, user_id=creditor.principal.user_id)
    await first.execute_update(CaseWorkflow.assign_bank_account, assign)
    await eventually(lambda: one_open_task("Assign a bank account to 1 case"))
    await second.execute_update(CaseWorkflow.assign_bank_account, assign)

    async def solved() -> TaskRow:
        [row] = await task_rows(sessions, TaskType.ASSIGN_BANK_ACCOUNT)
        assert row.status == TaskStatus.SOLVED.value
        return row

    done = await eventually(solved)
    assert done.id == task.id
    assert done.date_solved is not None
    assert done.resolved_by == {
        "kind": "system",
        "userId": None,
        "reason": "every case has a bank account",
    }
    view = await creditor_account(ts_env, creditor).query(CreditorWorkflow.view)
    assert (view.cases_missing_bank_account, view.cases_waiting_for_contract) == (0, 2)


async def test_signing_the_contract_solves_the_one_task_and_releases_every_waiting_case(
    ts_env: WorkflowEnvironment,
    ts_worker: Worker,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
) -> None:
    account = await register_bank_account(sessions, creditor)
    cases = [
        (await open_case(ts_env, creditor, task_queue, bank_account=account))[1] for _ in range(3)
    ]
    for case in cases:
        assert (case.status, case.sub_status) == (
            CaseStatus.CREATED,
            SubStatus.PENDING_CONTRACT_SIGNING,
        )

    async def one_task_for_three_cases() -> TaskRow:
        rows = await task_rows(sessions, TaskType.SIGN_CONTRACT)
        assert [(row.status, row.scope, row.case_id) for row in rows] == [("Open", "Account", None)]
        assert rows[0].description.startswith("3 cases wait for a signed contract")
        return rows[0]

    task = await eventually(one_task_for_three_cases)
    assert task.owner_org_id == creditor.org_id
    assert await task_rows(sessions, TaskType.ASSIGN_BANK_ACCOUNT) == []

    view = await creditor_account(ts_env, creditor).execute_update(
        CreditorWorkflow.sign_contract, SignContractInput(user_id=creditor.principal.user_id)
    )

    # The update answers once the read model shows the signed contract and the solved task.
    assert view.contract_signed_at is not None
    assert view.cases_waiting_for_contract == 0
    [solved] = await task_rows(sessions, TaskType.SIGN_CONTRACT)
    assert (solved.id, solved.status) == (task.id, "Solved")
    assert solved.resolved_by == {
        "kind": "user",
        "userId": str(creditor.principal.user_id),
        "reason": "contract signed",
    }
    async with sessions() as session:
        org = await session.get(Organisation, creditor.org_id)
    assert org is not None and org.contract_signed_at == view.contract_signed_at

    async def all_validated() -> None:
        for case in cases:
            row = await case_row(sessions, case.case_id)
            assert (row.status, row.sub_status) == ("Validated", None)

    await eventually(all_validated)
    for case in cases:
        assert [
            (h.status, h.sub_status, h.changed_by, h.note)
            for h in await history_of(sessions, case.case_id)
        ] == [
            ("Created", None, "API", "Case created via API"),
            ("Created", "Pending contract signing", "System", "Waiting: Pending contract signing"),
            ("Validated", None, "System", "All intake checks passed"),
        ]


# --- validation ---------------------------------------------------------------------------------


async def test_a_case_with_missing_data_waits_for_a_correction_then_moves_on(
    ts_env: WorkflowEnvironment,
    ts_worker: Worker,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
) -> None:
    handle, created = await open_case(ts_env, creditor, task_queue, debtor=UNREACHABLE_DEBTOR)

    # Read-your-writes: the case comes back with the task already listed, deadline included.
    assert (created.status, created.sub_status) == (
        CaseStatus.CREATED,
        SubStatus.VALIDATION_NEEDS_INFO,
    )
    [task] = await task_rows(sessions, TaskType.CASE_VALIDATION_NEEDS_INFO)
    assert (task.status, task.case_id, task.owner_org_id, task.scope, task.access_level) == (
        "Open",
        created.case_id,
        creditor.org_id,
        "Case",
        "Creditor",
    )
    assert task.deadline is not None
    assert "postal address" in task.description

    corrected = await handle.execute_update(
        CaseWorkflow.correct_case,
        CorrectCaseInput(
            submission=CaseSubmission.model_validate(
                case_body(creditorReference=created.submission.creditor_reference)
            ),
            user_id=creditor.principal.user_id,
        ),
    )

    assert (corrected.status, corrected.sub_status) == (
        CaseStatus.CREATED,
        SubStatus.PENDING_CONTRACT_SIGNING,
    )
    [solved] = await task_rows(sessions, TaskType.CASE_VALIDATION_NEEDS_INFO)
    assert (solved.id, solved.status) == (task.id, "Solved")
    assert solved.resolved_by is not None
    assert solved.resolved_by["reason"] == "case data corrected and revalidated"
    row = await case_row(sessions, created.case_id)
    assert (row.status, row.sub_status, row.debtor["address"]) == (
        "Created",
        "Pending contract signing",
        "Vestergade 12",
    )
    assert [
        (h.status, h.sub_status, h.changed_by) for h in await history_of(sessions, created.case_id)
    ] == [
        ("Created", None, "API"),
        ("Created", "Validation needs info", "System"),
        ("Created", "Pending contract signing", "System"),
    ]


# --- the partner's review -----------------------------------------------------------------------


async def test_an_unreviewed_case_turns_overdue_and_postponing_moves_its_timer(
    ts_env: WorkflowEnvironment,
    ts_worker: Worker,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    handle = await validated_case(ts_env, sessions, creditor, task_queue)
    assigned = await handle.execute_update(
        CaseWorkflow.assign_partner,
        AssignPartnerInput(partner=partner.org_ref, user_id=ops.principal.user_id),
    )
    assert (assigned.status, assigned.sub_status) == (
        CaseStatus.ASSIGNED,
        SubStatus.PARTNER_REVIEWING,
    )
    [review] = await task_rows(sessions, TaskType.REVIEW_NEW_CASE)
    assert (review.status, review.owner_org_id, review.access_level, review.case_id) == (
        "Open",
        partner.org_id,
        "Partner",
        assigned.case_id,
    )
    deadline = review.deadline
    assert deadline is not None
    local_deadline = deadline.astimezone(COPENHAGEN)
    assert local_deadline.time() == dt.time(23, 59, 59) and local_deadline.weekday() < 5
    seen = await attributes(handle, ts_env.client)
    assert (seen["OpenTaskTypes"], seen["OverdueTaskCount"]) == (["ReviewNewCase"], 0)
    assert same_instant(seen["NextDeadline"], deadline)
    # The partner owes the review; its deadline (or a reminder before it) comes next.
    assert seen["WaitingOn"] == ["Partner", "Timer"]
    assert isinstance(seen["NextStepAt"], dt.datetime)
    assert seen["NextStepAt"] <= deadline + dt.timedelta(seconds=1)

    # Nobody reviews it: a minute after the deadline the task is overdue, and still open.
    await ts_env.sleep(deadline - await ts_env.get_current_time() + dt.timedelta(minutes=1))

    async def overdue(times: int) -> TaskRow:
        assert (await attributes(handle, ts_env.client))["OverdueTaskCount"] == 1
        [row] = await task_rows(sessions, TaskType.REVIEW_NEW_CASE)
        assert row.status == "Open" and row.overdue_since is not None
        assert len(await events_of(sessions, "task.overdue", task_id=review.id)) == times
        return row

    late = await eventually(lambda: overdue(1))
    assert late.overdue_since is not None and late.overdue_since >= deadline
    [event] = await events_of(sessions, "task.overdue", task_id=review.id)
    assert (event.org_id, event.case_id, event.payload["taskType"]) == (
        partner.org_id,
        assigned.case_id,
        "ReviewNewCase",
    )

    # The partner postpones by three days: the original deadline is kept, the task is on time.
    new_deadline = await ts_env.get_current_time() + dt.timedelta(days=3)
    postponed = await handle.execute_update(
        CaseWorkflow.postpone_task,
        PostponeTaskInput(
            task_id=review.id,
            deadline=new_deadline,
            reason="waiting for the debtor's file",
            user_id=partner.principal.user_id,
        ),
    )
    assert (postponed.deadline, postponed.original_deadline, postponed.overdue_since) == (
        new_deadline,
        deadline,
        None,
    )
    [row] = await task_rows(sessions, TaskType.REVIEW_NEW_CASE)
    assert (row.deadline, row.original_deadline, row.overdue_since) == (
        new_deadline,
        deadline,
        None,
    )

    async def on_time() -> None:
        seen = await attributes(handle, ts_env.client)
        assert seen["OverdueTaskCount"] == 0
        assert same_instant(seen["NextDeadline"], new_deadline)

    await eventually(on_time)

    # The timer moved with the deadline: a minute before it nothing happens, after it the task
    # is overdue again.
    await ts_env.sleep(new_deadline - await ts_env.get_current_time() - dt.timedelta(minutes=1))
    state = await handle.query(CaseWorkflow.get_state)
    assert [(t.id, t.overdue_since) for t in state.book.tasks] == [(review.id, None)]
    await on_time()
    [row] = await task_rows(sessions, TaskType.REVIEW_NEW_CASE)
    assert row.overdue_since is None

    await ts_env.sleep(dt.timedelta(minutes=2))
    late_again = await eventually(lambda: overdue(2))
    assert late_again.overdue_since is not None and late_again.overdue_since >= new_deadline
    assert late_again.original_deadline == deadline

    # The partner accepts: the case is in collection and the review task is solved.
    accepted = await handle.execute_update(
        CaseWorkflow.accept_case,
        PartnerDecisionInput(partner_id=partner.org_id, user_id=partner.principal.user_id),
    )
    assert (accepted.status, accepted.sub_status) == (CaseStatus.IN_COLLECTION, None)
    [solved] = await task_rows(sessions, TaskType.REVIEW_NEW_CASE)
    assert (solved.status, solved.resolved_by) == (
        "Solved",
        {"kind": "user", "userId": str(partner.principal.user_id), "reason": "case accepted"},
    )
    assert (await case_row(sessions, accepted.case_id)).status == "In Collection"
    history = await history_of(sessions, accepted.case_id)
    assert [(h.status, h.sub_status, h.changed_by, h.note) for h in history[-2:]] == [
        (
            "Assigned",
            "Partner reviewing",
            str(ops.principal.user_id),
            f"Assigned to {partner.org_ref.name}",
        ),
        ("In Collection", None, str(partner.principal.user_id), "Accepted by partner"),
    ]

    async def nothing_open() -> None:
        seen = await attributes(handle, ts_env.client)
        assert (seen["CaseStatus"], seen["OpenTaskTypes"], seen["OverdueTaskCount"]) == (
            "In Collection",
            [],
            0,
        )
        assert seen["NextDeadline"] is None
        # The partner works the case; the monthly survey is its next timer.
        assert seen["WaitingOn"] == ["Partner", "Timer"]
        survey = (await handle.query(CaseWorkflow.get_state)).next_survey_at
        assert survey is not None and same_instant(seen["NextStepAt"], survey)

    await eventually(nothing_open)


async def test_a_rejected_case_is_validated_again_with_the_reason_in_its_history(
    ts_env: WorkflowEnvironment,
    ts_worker: Worker,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    handle = await validated_case(ts_env, sessions, creditor, task_queue)
    await handle.execute_update(
        CaseWorkflow.assign_partner,
        AssignPartnerInput(partner=partner.org_ref, user_id=ops.principal.user_id),
    )
    [review] = await task_rows(sessions, TaskType.REVIEW_NEW_CASE)
    reason = "The debtor is outside the regions we cover"

    rejected = await handle.execute_update(
        CaseWorkflow.reject_case,
        PartnerDecisionInput(
            partner_id=partner.org_id, user_id=partner.principal.user_id, reason=reason
        ),
    )

    assert (rejected.status, rejected.sub_status, rejected.partner) == (
        CaseStatus.VALIDATED,
        None,
        None,
    )
    row = await case_row(sessions, rejected.case_id)
    assert (row.status, row.sub_status, row.partner_id) == ("Validated", None, None)
    last = (await history_of(sessions, rejected.case_id))[-1]
    assert (last.status, last.sub_status, last.changed_by) == (
        "Validated",
        None,
        str(partner.principal.user_id),
    )
    assert last.note is not None and reason in last.note
    [solved] = await task_rows(sessions, TaskType.REVIEW_NEW_CASE)
    assert (solved.id, solved.status) == (review.id, "Solved")
    assert solved.resolved_by is not None and reason in solved.resolved_by["reason"]

    async def unassigned() -> None:
        seen = await attributes(handle, ts_env.client)
        assert (seen["CaseStatus"], seen["PartnerId"], seen["OpenTaskTypes"]) == (
            "Validated",
            None,
            [],
        )
        assert (seen["WaitingOn"], seen["NextStepAt"]) == (["Ops"], None)

    await eventually(unassigned)

    # Ready for assignment again: a new assignment opens a new review task.
    await handle.execute_update(
        CaseWorkflow.assign_partner,
        AssignPartnerInput(partner=partner.org_ref, user_id=ops.principal.user_id),
    )
    rows = await task_rows(sessions, TaskType.REVIEW_NEW_CASE)
    assert [(r.id == review.id, r.status) for r in rows] == [(True, "Solved"), (False, "Open")]


# --- rejected task actions ----------------------------------------------------------------------


async def test_postponing_into_the_past_or_closing_a_system_task_by_hand_changes_nothing(
    ts_env: WorkflowEnvironment,
    ts_worker: Worker,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
) -> None:
    handle, created = await open_case(ts_env, creditor, task_queue, debtor=UNREACHABLE_DEBTOR)
    [task] = await task_rows(sessions, TaskType.CASE_VALIDATION_NEEDS_INFO)
    state_before = await handle.query(CaseWorkflow.get_state)
    user_id = creditor.principal.user_id

    with pytest.raises(WorkflowUpdateFailedError) as postponed:
        await handle.execute_update(
            CaseWorkflow.postpone_task,
            PostponeTaskInput(
                task_id=task.id,
                deadline=await ts_env.get_current_time() - dt.timedelta(hours=1),
                reason="too late",
                user_id=user_id,
            ),
        )
    with pytest.raises(WorkflowUpdateFailedError) as closed:
        await handle.execute_update(
            CaseWorkflow.close_task, CloseTaskInput(task_id=task.id, user_id=user_id)
        )

    for failure, code in ((postponed, INVALID_DEADLINE), (closed, TASK_NOT_RESOLVABLE_BY_HAND)):
        cause = failure.value.cause
        assert isinstance(cause, ApplicationError) and cause.type == code
        assert cause.non_retryable
    assert await handle.query(CaseWorkflow.get_state) == state_before
    [after] = await task_rows(sessions, TaskType.CASE_VALIDATION_NEEDS_INFO)
    assert (after.status, after.deadline, after.original_deadline, after.version) == (
        "Open",
        task.deadline,
        task.original_deadline,
        task.version,
    )
    assert (await case_row(sessions, created.case_id)).sub_status == "Validation needs info"


async def test_a_validated_case_refuses_a_bank_account_in_another_currency(
    ts_env: WorkflowEnvironment,
    ts_worker: Worker,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
) -> None:
    handle = await validated_case(ts_env, sessions, creditor, task_queue)
    state_before = await handle.query(CaseWorkflow.get_state)
    euros = await register_bank_account(sessions, creditor, "EUR")

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(
            CaseWorkflow.assign_bank_account,
            AssignBankAccountInput(bank_account=euros, user_id=creditor.principal.user_id),
        )

    cause = refused.value.cause
    assert isinstance(cause, ApplicationError) and cause.non_retryable
    assert await handle.query(CaseWorkflow.get_state) == state_before
    kept = state_before.record.bank_account
    assert kept is not None
    assert (await case_row(sessions, state_before.record.case_id)).bank_account_id == kept.id


async def test_a_new_case_upserts_only_the_search_attributes_that_changed_since_its_start(
    ts_env: WorkflowEnvironment,
    ts_worker: Worker,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
) -> None:
    # A case of a signed creditor, with a bank account: Validated in its first workflow task.
    record = new_case_record(creditor)
    record.bank_account = await register_bank_account(sessions, creditor)
    start = case_start_operation(record, task_queue=task_queue, contract_signed=True)
    returned = await submit_case(ts_env.client, start, requested_by=creditor.principal.user_id)
    assert returned.status is CaseStatus.VALIDATED
    handle = await start.workflow_handle()

    events = (await handle.fetch_history()).events
    upserted = [
        sorted(
            event.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
        )
        for event in events
        if event.HasField("upsert_workflow_search_attributes_event_attributes")
    ]
    # Its status moved on from the start's Created, and it now waits on ops (ready for
    # assignment), in one upsert; it has no partner and has never had a task, so the partner
    # and task attributes stay absent, as the case started (each value upserted is one the
    # worker keeps for as long as the case stays cached), and no timer is to come.
    assert upserted == [["CaseStatus", "WaitingOn"]]
    seen = await attributes(handle, ts_env.client)
    assert seen == {
        "CaseStatus": "Validated",
        "PartnerId": None,
        "OpenTaskTypes": None,
        "NextDeadline": None,
        "OverdueTaskCount": None,
        "WaitingOn": ["Ops"],
        "NextStepAt": None,
    }
