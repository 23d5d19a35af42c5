"""A case's life after acceptance, months at a time, on the time-skipping server.

Surveys, pauses, payments, closing and after-care are driven through the workflow's updates, as
the API sends them; what is checked is what users and ops see: the read model (cases, history,
tasks, outbox) and the workflow's own executions.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, WorkflowExecutionStatus
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    GetWorkflowExecutionHistoryRequest,
)
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.cases import (
    AssignPartnerInput,
    CaseState,
    ChangeStatusInput,
    PartnerDecisionInput,
    RecordCommissionInput,
    RecordPaymentInput,
    RequestQuotesInput,
    ResumeInput,
    ReviewPartnerInput,
    SelectQuoteInput,
    SubmitQuoteInput,
    SurveyInput,
    SurveyOutcome,
)
from domain.enums import CaseStatus, Party, SubStatus
from domain.tasks import PostponeTaskInput, TaskType
from domain.transitions import Mover
from store.models import CaseInvitation, OutboxEventRow, TaskRow
from tests.support import Actor, make_actor
from tests.workflows.test_intake import (
    case_row,
    eventually,
    history_of,
    task_rows,
    validated_case,
)
from workflows.case import CaseWorkflow

AMOUNT = Decimal("12500.00")
# Low enough that a 14-month life continues as new several times (a month writes a few dozen
# events), high enough that a single busy month fits in one run.
HISTORY_LIMIT = 150


async def state_of(handle: WorkflowHandle[Any, Any]) -> CaseState:
    return await handle.query(CaseWorkflow.get_state)


async def open_tasks(sessions: async_sessionmaker[AsyncSession], type: TaskType) -> list[TaskRow]:
    return [row for row in await task_rows(sessions, type) if row.status == "Open"]


async def accepted_case(
    env: WorkflowEnvironment,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    task_queue: str,
    **options: Any,
) -> WorkflowHandle[Any, Any]:
    handle = await validated_case(env, sessions, creditor, task_queue, **options)
    await handle.execute_update(
        CaseWorkflow.assign_partner,
        AssignPartnerInput(partner=partner.org_ref, user_id=ops.principal.user_id),
    )
    await handle.execute_update(
        CaseWorkflow.accept_case,
        PartnerDecisionInput(partner_id=partner.org_id, user_id=partner.principal.user_id),
    )
    return handle


async def until_next_survey(
    env: WorkflowEnvironment,
    handle: WorkflowHandle[Any, Any],
    sessions: async_sessionmaker[AsyncSession],
) -> TaskRow:
    """Move the clock past the next monthly anniversary; returns the survey it raised."""
    due = (await state_of(handle)).next_survey_at
    assert due is not None
    await env.sleep(due - await env.get_current_time() + dt.timedelta(minutes=1))

    async def raised() -> TaskRow:
        [survey] = await open_tasks(sessions, TaskType.UPDATE_CASE_STATUS)
        assert survey.date_created >= due and survey.deadline is not None
        return survey

    return await eventually(raised)


async def runs_of(env: WorkflowEnvironment, workflow_id: str) -> list[str]:
    """Run ids of a workflow, newest first, following each run's ``continued from`` link."""
    service, namespace = env.client.workflow_service, env.client.namespace
    described = await service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(
            namespace=namespace, execution=WorkflowExecution(workflow_id=workflow_id)
        )
    )
    runs = [described.workflow_execution_info.execution.run_id]
    while True:
        history = await service.get_workflow_execution_history(
            GetWorkflowExecutionHistoryRequest(
                namespace=namespace,
                execution=WorkflowExecution(workflow_id=workflow_id, run_id=runs[-1]),
                maximum_page_size=1,
            )
        )
        started = history.history.events[0]
        assert started.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
        previous = started.workflow_execution_started_event_attributes.continued_execution_run_id
        if not previous:
            return runs
        runs.append(previous)


async def execution_status(env: WorkflowEnvironment, workflow_id: str) -> int:
    described = await env.client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(
            namespace=env.client.namespace, execution=WorkflowExecution(workflow_id=workflow_id)
        )
    )
    return described.workflow_execution_info.status


# --- the long life of one case ------------------------------------------------------------------


async def test_fourteen_months_of_surveys_a_pause_a_plan_and_payment_end_in_a_finished_case(
    ts_env: WorkflowEnvironment,
    ts_worker: Worker,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    handle = await accepted_case(
        ts_env, sessions, creditor, partner, ops, task_queue, history_limit=HISTORY_LIMIT
    )
    case_id = (await state_of(handle)).record.case_id
    partner_user = partner.principal.user_id
    # (status, subStatus, note) of every history entry from acceptance on, in order.
    expected: list[tuple[str, str | None, str | None]] = [
        ("In Collection", None, "Accepted by partner")
    ]
    instalment = (AMOUNT / 7).quantize(Decimal("0.01"))
    paid = Decimal(0)

    async def answer(outcome: SurveyOutcome, note: str, **change: Any) -> None:
        await handle.execute_update(
            CaseWorkflow.submit_survey,
            SurveyInput(
                partner_id=partner.org_id,
                user_id=partner_user,
                outcome=outcome,
                note=note,
                **change,
            ),
        )

    async def pay(amount: Decimal, paid_to: Party) -> None:
        await handle.execute_update(
            CaseWorkflow.record_payment,
            RecordPaymentInput(
                partner_id=partner.org_id,
                user_id=partner_user,
                amount=amount,
                paid_on=(await ts_env.get_current_time()).date(),
                paid_to=paid_to,
            ),
        )

    survey_ids: list[str] = []
    for month in range(1, 15):
        survey = await until_next_survey(ts_env, handle, sessions)
        survey_ids.append(survey.id)
        note = f"month {month}: debtor contacted"
        if month == 4:
            # The debtor disputes an invoice line: the partner pauses until the creditor answers.
            await answer(SurveyOutcome.PAUSE, note, waiting_for=Party.CREDITOR)
            expected.append(("On Hold", "Paused", f"Monthly update: {note}"))
            [waiting] = await open_tasks(sessions, TaskType.CLIENT_INPUT_REQUIRED)
            assert (waiting.owner_org_id, waiting.case_id) == (creditor.org_id, case_id)
            await ts_env.sleep(dt.timedelta(days=3))
            await handle.execute_update(
                CaseWorkflow.resume,
                ResumeInput(
                    org_id=partner.org_id, mover=Mover.PARTNER, user_id=partner_user, note="Clear"
                ),
            )
            expected.append(("In Collection", None, "Clear"))
            assert await open_tasks(sessions, TaskType.CLIENT_INPUT_REQUIRED) == []
        elif month == 7:
            await answer(
                SurveyOutcome.CONTINUE,
                note,
                status=CaseStatus.PAYMENT_PLAN,
                sub_status=SubStatus.PLAN_ACTIVE,
            )
            expected.append(("Payment Plan", "Plan active", f"Monthly update: {note}"))
        elif month == 14:
            await pay(AMOUNT - paid, Party.CREDITOR)  # the debtor paid the rest to the creditor
            await answer(
                SurveyOutcome.CLOSE,
                note,
                status=CaseStatus.RESOLVED,
                sub_status=SubStatus.PAID_IN_FULL,
            )
            expected.append(("Resolved", "Paid in full", f"Monthly update: {note}"))
        else:
            await answer(SurveyOutcome.CONTINUE, note)
            status = "Payment Plan" if month > 7 else "In Collection"
            expected.append(
                (status, "Plan active" if month > 7 else None, f"Monthly update: {note}")
            )
        if 7 < month < 14:
            await pay(instalment, Party.PARTNER)
            paid += instalment
        # Never two surveys open at once; an answered one is solved by the partner.
        assert await open_tasks(sessions, TaskType.UPDATE_CASE_STATUS) == []

    # Resolved as Paid: the creditor reviews the partner, the partner invoices its commission.
    row = await case_row(sessions, case_id)
    assert (row.status, row.sub_status, row.close_code) == ("Resolved", "Paid in full", "Paid")
    [review] = await open_tasks(sessions, TaskType.REVIEW_PARTNER)
    [commission] = await open_tasks(sessions, TaskType.RECORD_PAYMENT)
    assert (review.owner_org_id, commission.owner_org_id) == (creditor.org_id, partner.org_id)
    assert await execution_status(ts_env, handle.id) == (
        WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING
    )
    await handle.execute_update(
        CaseWorkflow.review_partner,
        ReviewPartnerInput(user_id=creditor.principal.user_id, rating=9, comment="Patient"),
    )
    await handle.execute_update(
        CaseWorkflow.record_commission,
        RecordCommissionInput(
            partner_id=partner.org_id,
            user_id=partner_user,
            amount=Decimal("1250.00"),
            paid_on=(await ts_env.get_current_time()).date(),
        ),
    )

    # With no task left open, the workflow completes.
    async def completed() -> None:
        assert await execution_status(ts_env, handle.id) == (
            WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_COMPLETED
        )

    await eventually(completed)

    # Fourteen surveys, one a month, each solved by the partner and none duplicated.
    surveys = await task_rows(sessions, TaskType.UPDATE_CASE_STATUS)
    assert [s.id for s in surveys] == survey_ids and len(set(survey_ids)) == 14
    assert all(s.status == "Solved" and s.deadline is not None for s in surveys)
    assert all(s.resolved_by and s.resolved_by["userId"] == str(partner_user) for s in surveys)
    months = [s.date_created for s in surveys]
    assert all(
        dt.timedelta(days=27) < later - earlier < dt.timedelta(days=32)
        for earlier, later in itertools.pairwise(months)
    )
    solved = {t.type for t in (await task_rows(sessions, TaskType.REVIEW_PARTNER))}
    solved |= {t.type for t in (await task_rows(sessions, TaskType.RECORD_PAYMENT))}
    assert {t.status for t in await open_tasks(sessions, TaskType.REVIEW_PARTNER)} == set()
    assert solved == {"ReviewPartner", "RecordPayment"}

    # The history lists every change in order, each once.
    history = await history_of(sessions, case_id)
    assert [h.seq for h in history] == list(range(1, len(history) + 1))
    accepted_at = next(i for i, h in enumerate(history) if h.note == "Accepted by partner")
    assert [(h.status, h.sub_status, h.note) for h in history[accepted_at:]] == expected
    async with sessions() as session:
        changes = list(
            await session.scalars(
                select(OutboxEventRow).where(
                    OutboxEventRow.case_id == case_id,
                    OutboxEventRow.type == "case.status.changed",
                )
            )
        )
    sequences = sorted(int(e.payload["sequence"]) for e in changes)
    assert len(sequences) == len(set(sequences))

    # It lived through several runs: continued as new at least twice, losing nothing (above).
    runs = await runs_of(ts_env, handle.id)
    assert len(runs) >= 3


async def test_an_unanswered_survey_stays_the_only_one_when_the_next_month_comes(
    ts_env: WorkflowEnvironment,
    ts_worker: Worker,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    handle = await accepted_case(ts_env, sessions, creditor, partner, ops, task_queue)
    first = await until_next_survey(ts_env, handle, sessions)
    due = (await state_of(handle)).next_survey_at
    assert due is not None
    await ts_env.sleep(due - await ts_env.get_current_time() + dt.timedelta(days=1))

    async def one_overdue() -> None:
        [survey] = await open_tasks(sessions, TaskType.UPDATE_CASE_STATUS)
        assert survey.id == first.id and survey.overdue_since is not None
        state = await state_of(handle)
        assert state.next_survey_at is not None and state.next_survey_at > due

    await eventually(one_overdue)


async def test_a_pause_for_the_partner_raises_follow_up_and_closing_solves_it(
    ts_env: WorkflowEnvironment,
    ts_worker: Worker,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    handle = await accepted_case(ts_env, sessions, creditor, partner, ops, task_queue)
    user = partner.principal.user_id
    await handle.execute_update(
        CaseWorkflow.change_status,
        ChangeStatusInput(
            mover=Mover.PARTNER,
            org_id=partner.org_id,
            user_id=user,
            status=CaseStatus.ON_HOLD,
            sub_status=SubStatus.PAUSED,
            waiting_for=Party.PARTNER,
            note="Waiting for the court date",
        ),
    )
    [follow_up] = await open_tasks(sessions, TaskType.FOLLOW_UP_PAUSED_CASE)
    assert (follow_up.owner_org_id, follow_up.description) == (
        partner.org_id,
        "Waiting for the court date",
    )
    # 14 business days: at least 18 calendar days later.
    assert follow_up.deadline is not None
    assert follow_up.deadline - follow_up.date_created > dt.timedelta(days=18)
    # Paused through an anniversary: no survey is raised for a paused month.
    due = (await state_of(handle)).next_survey_at
    assert due is not None
    await ts_env.sleep(due - await ts_env.get_current_time() + dt.timedelta(hours=1))

    async def skipped() -> None:
        state = await state_of(handle)
        assert state.next_survey_at is not None and state.next_survey_at > due

    await eventually(skipped)
    assert await task_rows(sessions, TaskType.UPDATE_CASE_STATUS) == []

    await handle.execute_update(
        CaseWorkflow.change_status,
        ChangeStatusInput(
            mover=Mover.PARTNER,
            org_id=partner.org_id,
            user_id=user,
            status=CaseStatus.CLOSED,
            close_code="Debtor untraceable",
            note="Gone",
        ),
    )
    [solved] = await task_rows(sessions, TaskType.FOLLOW_UP_PAUSED_CASE)
    assert solved.status == "Solved"
    # Nothing was paid to the creditor: a review is due, no commission.
    assert len(await open_tasks(sessions, TaskType.REVIEW_PARTNER)) == 1
    assert await task_rows(sessions, TaskType.RECORD_PAYMENT) == []
    assert (await state_of(handle)).next_survey_at is None


async def test_an_unpaid_commission_is_chased_once_and_recording_it_solves_both(
    ts_env: WorkflowEnvironment,
    ts_worker: Worker,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    handle = await accepted_case(ts_env, sessions, creditor, partner, ops, task_queue)
    user = partner.principal.user_id
    today = (await ts_env.get_current_time()).date()
    await handle.execute_update(
        CaseWorkflow.record_payment,
        RecordPaymentInput(
            partner_id=partner.org_id,
            user_id=user,
            amount=AMOUNT,
            paid_on=today,
            paid_to=Party.CREDITOR,
        ),
    )
    await handle.execute_update(
        CaseWorkflow.change_status,
        ChangeStatusInput(
            mover=Mover.PARTNER,
            org_id=partner.org_id,
            user_id=user,
            status=CaseStatus.RESOLVED,
            sub_status=SubStatus.PAID_IN_FULL,
        ),
    )
    [record_payment] = await open_tasks(sessions, TaskType.RECORD_PAYMENT)
    assert record_payment.deadline is not None
    await ts_env.sleep(
        record_payment.deadline - await ts_env.get_current_time() + dt.timedelta(minutes=1)
    )

    async def chased() -> TaskRow:
        [chase] = await open_tasks(sessions, TaskType.CHASE_PAYMENT)
        assert chase.owner_org_id == partner.org_id
        return chase

    await eventually(chased)
    await handle.execute_update(
        CaseWorkflow.record_commission,
        RecordCommissionInput(
            partner_id=partner.org_id, user_id=user, amount=Decimal("900.00"), paid_on=today
        ),
    )
    assert await open_tasks(sessions, TaskType.RECORD_PAYMENT) == []
    assert await open_tasks(sessions, TaskType.CHASE_PAYMENT) == []
    assert len(await task_rows(sessions, TaskType.CHASE_PAYMENT)) == 1


# --- quotes ---------------------------------------------------------------------------------------


async def test_two_partners_invited_one_quotes_and_the_creditor_picks_it(
    ts_env: WorkflowEnvironment,
    ts_worker: Worker,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    other = await make_actor(sessions, partner.principal.role)
    handle = await validated_case(ts_env, sessions, creditor, task_queue)
    case_id = (await state_of(handle)).record.case_id
    await handle.execute_update(
        CaseWorkflow.request_quotes,
        RequestQuotesInput(
            partners=[partner.org_ref, other.org_ref], user_id=ops.principal.user_id
        ),
    )
    row = await case_row(sessions, case_id)
    assert (row.status, row.sub_status) == ("Validated", "Collecting quotes")
    asked = await open_tasks(sessions, TaskType.PROVIDE_QUOTE)
    assert {t.owner_org_id for t in asked} == {partner.org_id, other.org_id}
    async with sessions() as session:
        invited = set(await session.scalars(select(CaseInvitation.partner_id)))
    assert invited == {partner.org_id, other.org_id}

    quote = await handle.execute_update(
        CaseWorkflow.submit_quote,
        SubmitQuoteInput(
            partner=partner.org_ref,
            user_id=partner.principal.user_id,
            fee_percent=Decimal("12.5"),
            terms="No cure, no pay",
        ),
    )
    row = await case_row(sessions, case_id)
    assert (row.status, row.sub_status) == ("Validated", "Pending quote selection")
    [select_task] = await open_tasks(sessions, TaskType.SELECT_QUOTE_WINNER)
    assert select_task.owner_org_id == creditor.org_id
    assert select_task.deadline is not None

    await handle.execute_update(
        CaseWorkflow.select_quote,
        SelectQuoteInput(quote_id=quote.id, user_id=creditor.principal.user_id),
    )
    row = await case_row(sessions, case_id)
    assert (row.status, row.sub_status, row.partner_id) == (
        "Assigned",
        "Partner reviewing",
        partner.org_id,
    )
    by_partner = {t.owner_org_id: t for t in await task_rows(sessions, TaskType.PROVIDE_QUOTE)}
    assert by_partner[other.org_id].status == "Solved"
    assert by_partner[other.org_id].resolved_by == {
        "kind": "system",
        "userId": None,
        "reason": "another quote was selected",
    }
    assert [t.status for t in await task_rows(sessions, TaskType.SELECT_QUOTE_WINNER)] == ["Solved"]
    [review] = await open_tasks(sessions, TaskType.REVIEW_NEW_CASE)
    assert review.owner_org_id == partner.org_id
    statuses = {q["partner"]["id"]: q["status"] for q in row.details["quotes"]}
    assert statuses == {str(partner.org_id): "Accepted", str(other.org_id): "Withdrawn"}
    async with sessions() as session:
        assert list(await session.scalars(select(CaseInvitation.partner_id))) == []


@pytest.mark.parametrize("postponed", [False, True], ids=["on-time", "postponed"])
async def test_unpicked_quotes_are_reminded_at_7_and_14_days_and_expire_a_week_after_the_deadline(
    ts_env: WorkflowEnvironment,
    ts_worker: Worker,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    postponed: bool,
) -> None:
    handle = await validated_case(ts_env, sessions, creditor, task_queue)
    case_id = (await state_of(handle)).record.case_id
    await handle.execute_update(
        CaseWorkflow.request_quotes,
        RequestQuotesInput(partners=[partner.org_ref], user_id=ops.principal.user_id),
    )
    await handle.execute_update(
        CaseWorkflow.submit_quote,
        SubmitQuoteInput(
            partner=partner.org_ref, user_id=partner.principal.user_id, fee_percent=Decimal(15)
        ),
    )
    [pick] = await open_tasks(sessions, TaskType.SELECT_QUOTE_WINNER)
    assert pick.deadline is not None
    # 14 calendar days: the end of the 14th day in the creditor's time zone.
    assert dt.timedelta(days=14) <= pick.deadline - pick.date_created < dt.timedelta(days=15)
    deadline = pick.deadline
    if postponed:  # the creditor needs three more weeks: expiry moves with the deadline
        deadline += dt.timedelta(days=21)
        await handle.execute_update(
            CaseWorkflow.postpone_task,
            PostponeTaskInput(
                task_id=pick.id,
                deadline=deadline,
                reason="board meets next month",
                user_id=creditor.principal.user_id,
            ),
        )

    async def reminders() -> list[OutboxEventRow]:
        async with sessions() as session:
            return list(
                await session.scalars(
                    select(OutboxEventRow)
                    .where(OutboxEventRow.type == "task.reminder")
                    .order_by(OutboxEventRow.occurred_at)
                )
            )

    await ts_env.sleep(dt.timedelta(days=7, minutes=1))

    async def reminded(times: int) -> None:
        assert [e.payload["reminder"] for e in await reminders()] == list(range(1, times + 1))

    await eventually(lambda: reminded(1))
    await ts_env.sleep(dt.timedelta(days=7))
    await eventually(lambda: reminded(2))
    # Still open a minute before the expiry, a week after the deadline...
    expiry = deadline + dt.timedelta(days=7)
    await ts_env.sleep(expiry - await ts_env.get_current_time() - dt.timedelta(minutes=1))
    assert (await case_row(sessions, case_id)).status == "Validated"
    await ts_env.sleep(dt.timedelta(minutes=2))

    async def expired() -> None:
        row = await case_row(sessions, case_id)
        assert (row.status, row.close_code) == ("Closed", "Quotes expired – not accepted")  # noqa: RUF001
        assert [q["status"] for q in row.details["quotes"]] == ["Expired"]

    await eventually(expired)
    assert await open_tasks(sessions, TaskType.SELECT_QUOTE_WINNER) == []


async def test_a_quote_round_without_quotes_closes_the_case(
    ts_env: WorkflowEnvironment,
    ts_worker: Worker,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    handle = await validated_case(ts_env, sessions, creditor, task_queue)
    case_id = (await state_of(handle)).record.case_id
    await handle.execute_update(
        CaseWorkflow.request_quotes,
        RequestQuotesInput(partners=[partner.org_ref], user_id=ops.principal.user_id),
    )
    [asked] = await open_tasks(sessions, TaskType.PROVIDE_QUOTE)
    assert asked.deadline is not None
    await ts_env.sleep(asked.deadline - await ts_env.get_current_time() + dt.timedelta(minutes=1))

    async def closed() -> None:
        row = await case_row(sessions, case_id)
        assert (row.status, row.close_code) == ("Closed", "No quotes received")

    await eventually(closed)
    # Nobody worked it: no review, and the workflow has nothing left to wait for.
    assert await task_rows(sessions, TaskType.REVIEW_PARTNER) == []

    async def completed() -> None:
        assert await execution_status(ts_env, handle.id) == (
            WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_COMPLETED
        )

    await eventually(completed)
    assert uuid.UUID(str(case_id))
