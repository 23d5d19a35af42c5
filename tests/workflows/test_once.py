"""An update id is applied once per workflow, even when a retry reaches the next run.

Temporal itself de-duplicates update ids within a run only; the API's retries (same
Idempotency-Key, same update id) may arrive after the workflow continued as new.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.cases import RecordPaymentInput
from domain.chat import PostMessageInput
from domain.enums import Party
from domain.update_ids import client_update_id, digest
from store.models import ChatMessageRow
from tests.support import Actor
from tests.workflows.test_lifecycle import accepted_case, runs_of, state_of
from workflows.case import CaseWorkflow


async def next_run(
    env: WorkflowEnvironment, handle: WorkflowHandle[Any, Any], partner: Actor
) -> None:
    """Make the case continue as new (its history limit is low): post until the run changes."""
    before = len(await runs_of(env, handle.id))
    for n in range(20):
        await handle.execute_update(
            CaseWorkflow.post_message,
            PostMessageInput(
                party=Party.PARTNER,
                org_id=partner.org_id,
                user_id=partner.principal.user_id,
                body=f"update {n}",
            ),
        )
        if len(await runs_of(env, handle.id)) > before:
            return
    raise AssertionError("the case never continued as new")


async def test_a_retried_payment_and_message_reach_the_next_run_and_apply_once(
    ts_env: WorkflowEnvironment,
    ts_worker: Worker,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    handle = await accepted_case(
        ts_env, sessions, creditor, partner, ops, task_queue, history_limit=60
    )
    payment = RecordPaymentInput(
        partner_id=partner.org_id,
        user_id=partner.principal.user_id,
        amount=Decimal("100.00"),
        paid_on=dt.date(2026, 11, 2),
        paid_to=Party.PARTNER,
    )
    message = PostMessageInput(
        party=Party.CREDITOR,
        org_id=creditor.org_id,
        user_id=creditor.principal.user_id,
        body="Please call him on Monday",
    )
    key = client_update_id(partner.org_id, "payment-1")
    message_key = client_update_id(creditor.org_id, "message-1")
    first = await handle.execute_update(CaseWorkflow.record_payment, payment, id=key)
    posted = await handle.execute_update(CaseWorkflow.post_message, message, id=message_key)
    await next_run(ts_env, handle, partner)

    # The API retries both (same update ids) after the workflow continued as new.
    again = await handle.execute_update(CaseWorkflow.record_payment, payment, id=key)
    reposted = await handle.execute_update(CaseWorkflow.post_message, message, id=message_key)
    assert (again.id, again.amount) == (first.id, first.amount)
    assert reposted.id == posted.id
    state = await state_of(handle)
    assert [p.id for p in state.record.payments] == [first.id]
    async with sessions() as session:
        same = await session.scalar(
            select(func.count())
            .select_from(ChatMessageRow)
            .where(ChatMessageRow.body == "Please call him on Monday")
        )
    assert same == 1
    # A new id is a new payment.
    other = await handle.execute_update(
        CaseWorkflow.record_payment, payment, id=client_update_id(partner.org_id, "payment-2")
    )
    assert other.id != first.id
    assert len((await state_of(handle)).record.payments) == 2


def chat_from(actor: Actor, body: str) -> PostMessageInput:
    return PostMessageInput(
        party=Party.CREDITOR, org_id=actor.org_id, user_id=actor.principal.user_id, body=body
    )


async def test_only_updates_with_a_client_key_are_remembered_and_for_24_hours(
    ts_env: WorkflowEnvironment,
    ts_worker: Worker,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    # Created, assigned and accepted with ids the API does not derive from a key ("submit",
    # random ones): none is remembered, nor is a message sent without a key.
    handle = await accepted_case(ts_env, sessions, creditor, partner, ops, task_queue)
    await handle.execute_update(CaseWorkflow.post_message, chat_from(creditor, "no key"))
    assert (await state_of(handle)).applied_updates == []

    first = client_update_id(creditor.org_id, "first")
    await handle.execute_update(CaseWorkflow.post_message, chat_from(creditor, "1"), id=first)
    [remembered] = (await state_of(handle)).applied_updates
    assert remembered.id == digest(first) and remembered.result_id is not None

    # A day later (by the workflow's clock) the next keyed update forgets the first.
    await ts_env.sleep(dt.timedelta(hours=24, minutes=1))
    later = client_update_id(creditor.org_id, "later")
    await handle.execute_update(CaseWorkflow.post_message, chat_from(creditor, "2"), id=later)
    assert [u.id for u in (await state_of(handle)).applied_updates] == [digest(later)]
