"""Every way out of a situation leaves no task behind that nobody can solve, and no change that
would leave a case nobody can work."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.cases import (
    AssignPartnerInput,
    ChangeStatusInput,
    FileComplaintInput,
    GenericTaskInput,
    PartnerDecisionInput,
    RecordPaymentInput,
    RequestQuotesInput,
    ResumeInput,
    SelectQuoteInput,
    SubmitQuoteInput,
)
from domain.chat import PostMessageInput, ThreadType
from domain.enums import CaseStatus, OrgKind, Party, SubStatus
from domain.errors import INVALID_DEADLINE, INVALID_TRANSITION
from domain.tasks import AccessLevel, TaskType
from domain.transitions import Mover
from store.models import CaseInvitation
from tests.support import Actor, make_actor
from tests.workflows.test_intake import case_row, task_rows, validated_case
from tests.workflows.test_lifecycle import accepted_case, open_tasks, state_of
from workflows.case import CaseWorkflow


async def refused(handle: WorkflowHandle[Any, Any], update: Any, arg: Any) -> str:
    """Send an update that must be refused; returns the refusal's code."""
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await handle.execute_update(update, arg)
    cause = caught.value.cause
    assert isinstance(cause, ApplicationError) and cause.type
    return cause.type


def move(actor: Actor, mover: Mover, status: CaseStatus, **more: Any) -> ChangeStatusInput:
    return ChangeStatusInput(
        mover=mover, org_id=actor.org_id, user_id=actor.principal.user_id, status=status, **more
    )


def say(actor: Actor, party: Party, body: str, **more: Any) -> PostMessageInput:
    return PostMessageInput(
        party=party, org_id=actor.org_id, user_id=actor.principal.user_id, body=body, **more
    )


async def test_a_rejection_closes_the_invoice_chat_and_its_tasks(
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
    await handle.execute_update(
        CaseWorkflow.post_message, say(creditor, Party.CREDITOR, "Anything unclear?")
    )
    assert len(await open_tasks(sessions, TaskType.NEW_MESSAGE)) == 1
    # Declining is POST /reject, not a status change (that would leave the partner on the case).
    assert (
        await refused(handle, CaseWorkflow.change_status, move(partner, Mover.PARTNER, "Validated"))
        == INVALID_TRANSITION
    )
    await handle.execute_update(
        CaseWorkflow.reject_case,
        PartnerDecisionInput(
            partner_id=partner.org_id, user_id=partner.principal.user_id, reason="Too small"
        ),
    )
    [closed] = await task_rows(sessions, TaskType.NEW_MESSAGE)
    assert (closed.status, closed.resolved_by) == (
        "Solved",
        {"kind": "system", "userId": None, "reason": "the thread is closed"},
    )


async def test_picking_a_quote_closes_the_losers_threads_and_ops_cannot_strand_a_round(
    ts_env: WorkflowEnvironment,
    ts_worker: Worker,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    rival = await make_actor(sessions, OrgKind.PARTNER)
    handle = await validated_case(ts_env, sessions, creditor, task_queue)
    case_id = (await state_of(handle)).record.case_id
    await handle.execute_update(
        CaseWorkflow.request_quotes,
        RequestQuotesInput(
            partners=[partner.org_ref, rival.org_ref], user_id=ops.principal.user_id
        ),
    )
    for bidder, fee in ((partner, 10), (rival, 12)):
        await handle.execute_update(
            CaseWorkflow.post_message,
            say(bidder, Party.PARTNER, "A question", thread_type=ThreadType.INVOICE_QUESTIONS_CHAT),
        )
        await handle.execute_update(
            CaseWorkflow.submit_quote,
            SubmitQuoteInput(
                partner=bidder.org_ref, user_id=bidder.principal.user_id, fee_percent=Decimal(fee)
            ),
        )
    assert len(await open_tasks(sessions, TaskType.REPLY_TO_CHAT)) == 2
    # Ops cannot move a case to In Collection without a partner, nor Resolve an unaccepted one.
    for status in (CaseStatus.IN_COLLECTION, CaseStatus.ASSIGNED):
        code = await refused(handle, CaseWorkflow.change_status, move(ops, Mover.OPS, status))
        assert code == INVALID_TRANSITION, status

    winner = next(
        q for q in (await state_of(handle)).record.quotes if q.partner.id == partner.org_id
    )
    await handle.execute_update(
        CaseWorkflow.select_quote,
        SelectQuoteInput(quote_id=winner.id, user_id=creditor.principal.user_id),
    )
    # Both questions threads close (the rival lost; the winner talks in the Invoice Chat now),
    # and with them the creditor's tasks to answer them.
    replies = await task_rows(sessions, TaskType.REPLY_TO_CHAT)
    assert [(t.status, t.resolved_by["reason"] if t.resolved_by else None) for t in replies] == [
        ("Solved", "the thread is closed")
    ] * 2
    async with sessions() as session:
        assert list(await session.scalars(select(CaseInvitation))) == []
    row = await case_row(sessions, case_id)
    assert (row.status, row.partner_id) == ("Assigned", partner.org_id)


async def test_ops_leaving_a_quote_round_withdraws_it(
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
    await handle.execute_update(
        CaseWorkflow.change_status, move(ops, Mover.OPS, CaseStatus.VALIDATED, note="Start over")
    )
    assert await open_tasks(sessions, TaskType.PROVIDE_QUOTE) == []
    row = await case_row(sessions, case_id)
    assert (row.status, row.sub_status) == ("Validated", None)
    assert [q["status"] for q in row.details["quotes"]] == ["Withdrawn"]
    state = await state_of(handle)
    assert state.first_quote_at is None
    # Ready for assignment again, as after a rejection.
    await handle.execute_update(
        CaseWorkflow.assign_partner,
        AssignPartnerInput(partner=partner.org_ref, user_id=ops.principal.user_id),
    )


async def test_a_review_put_on_hold_resumes_to_the_review_and_needs_acceptance_to_resolve(
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
        CaseWorkflow.assign_partner,
        AssignPartnerInput(partner=partner.org_ref, user_id=ops.principal.user_id),
    )
    await handle.execute_update(
        CaseWorkflow.change_status,
        move(
            partner,
            Mover.PARTNER,
            CaseStatus.ON_HOLD,
            sub_status=SubStatus.PAUSED,
            waiting_for=Party.PARTNER,
        ),
    )
    # Not accepted yet: no payments, no resolution.
    code = await refused(
        handle,
        CaseWorkflow.record_payment,
        RecordPaymentInput(
            partner_id=partner.org_id,
            user_id=partner.principal.user_id,
            amount=Decimal("12500.00"),
            paid_on=dt.date(2026, 11, 1),
            paid_to=Party.CREDITOR,
        ),
    )
    assert code == INVALID_TRANSITION
    code = await refused(
        handle,
        CaseWorkflow.change_status,
        move(partner, Mover.PARTNER, CaseStatus.RESOLVED, sub_status=SubStatus.PAID_IN_FULL),
    )
    assert code == INVALID_TRANSITION
    # Nobody to complain about before a partner accepted the case.
    code = await refused(
        handle,
        CaseWorkflow.file_complaint,
        FileComplaintInput(user_id=creditor.principal.user_id, message="Slow"),
    )
    assert code == INVALID_TRANSITION
    await handle.execute_update(
        CaseWorkflow.resume,
        ResumeInput(org_id=partner.org_id, mover=Mover.PARTNER, user_id=partner.principal.user_id),
    )
    row = await case_row(sessions, case_id)
    assert (row.status, row.sub_status) == ("Assigned", "Partner reviewing")
    assert await open_tasks(sessions, TaskType.FOLLOW_UP_PAUSED_CASE) == []
    assert len(await open_tasks(sessions, TaskType.REVIEW_NEW_CASE)) == 1


async def test_a_finished_case_takes_no_more_messages_and_generic_deadlines_are_future(
    ts_env: WorkflowEnvironment,
    ts_worker: Worker,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    handle = await accepted_case(ts_env, sessions, creditor, partner, ops, task_queue)
    past = await ts_env.get_current_time() - dt.timedelta(hours=1)
    code = await refused(
        handle,
        CaseWorkflow.create_generic_task,
        GenericTaskInput(
            owner=partner.org_ref,
            access_level=AccessLevel.PARTNER,
            title="Call the debtor",
            description="",
            deadline=past,
            user_id=ops.principal.user_id,
        ),
    )
    assert code == INVALID_DEADLINE
    await handle.execute_update(
        CaseWorkflow.post_message, say(partner, Party.PARTNER, "Starting tomorrow")
    )
    await handle.execute_update(
        CaseWorkflow.change_status,
        move(creditor, Mover.CREDITOR, CaseStatus.CLOSED, close_code="Withdrawn by client"),
    )
    assert await open_tasks(sessions, TaskType.REPLY_TO_CHAT) == []
    code = await refused(handle, CaseWorkflow.post_message, say(partner, Party.PARTNER, "ok, bye"))
    assert code == INVALID_TRANSITION


async def test_ops_unassign_a_reviewing_partner_but_cannot_send_a_worked_case_back(
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
        CaseWorkflow.assign_partner,
        AssignPartnerInput(partner=partner.org_ref, user_id=ops.principal.user_id),
    )
    await handle.execute_update(
        CaseWorkflow.change_status, move(ops, Mover.OPS, CaseStatus.VALIDATED, note="Unassign")
    )
    row = await case_row(sessions, case_id)
    assert (row.status, row.partner_id) == ("Validated", None)
    assert await open_tasks(sessions, TaskType.REVIEW_NEW_CASE) == []

    await handle.execute_update(
        CaseWorkflow.assign_partner,
        AssignPartnerInput(partner=partner.org_ref, user_id=ops.principal.user_id),
    )
    await handle.execute_update(
        CaseWorkflow.accept_case,
        PartnerDecisionInput(partner_id=partner.org_id, user_id=partner.principal.user_id),
    )
    code = await refused(
        handle, CaseWorkflow.change_status, move(ops, Mover.OPS, CaseStatus.VALIDATED)
    )
    assert code == INVALID_TRANSITION
    row = await case_row(sessions, case_id)
    assert (row.status, row.partner_id) == ("In Collection", partner.org_id)
