"""``WebhookDeliveryWorkflow``: retries on Debitura's schedule (walked by the time-skipping
server), disabling after 8 failures in a row or at once on 410, one case's events in order, and
the retention activity."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.webhooks import REPLAY_HEADER, wake_deliveries
from domain.webhooks import PruneRequest, webhook_workflow_id
from store.db import transaction
from store.models import WebhookDelivery, WebhookSubscription
from tests.support import Actor
from tests.webhooks import (
    Receiver,
    add_delivery,
    add_subscription,
    deliveries,
    local_webhooks,
    receiver,
    subscription,
)
from worker import build_worker

# Before any time-skipping test server's clock: always due.
PAST = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
# Debitura's schedule: the waits after the first seven failed attempts, in minutes.
SCHEDULE = (1, 2, 4, 8, 16, 30, 30)


async def walk(env: WorkflowEnvironment, hooks: Receiver, waits: tuple[float, ...]) -> None:
    """Skip time past each of ``waits`` (minutes, plus the jitter) in turn, waiting each time
    for the attempt that comes due."""
    for minutes in waits:
        expected = len(hooks.received) + 1
        await env.sleep(dt.timedelta(minutes=minutes * 1.1, seconds=1))
        await hooks.wait_for(expected)


async def ended(env: WorkflowEnvironment, workflow_id: str) -> None:
    """Until the workflow's run has completed (it ends once its subscription is disabled)."""
    handle = env.client.get_workflow_handle(workflow_id)
    async with asyncio.timeout(20):
        while (await handle.describe()).status != WorkflowExecutionStatus.COMPLETED:  # noqa: ASYNC110 - the server's state, polled
            await asyncio.sleep(0.1)


async def timer_waits(env: WorkflowEnvironment, workflow_id: str) -> list[float]:
    """The durations, in seconds, of the timers the workflow started, in order."""
    history = await env.client.get_workflow_handle(workflow_id).fetch_history()
    return [
        e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta().total_seconds()
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED
    ]


async def test_a_failing_delivery_is_retried_on_debituras_schedule_then_given_up_and_its_subscription_disabled(
    ts_env: WorkflowEnvironment,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    task_queue: str,
) -> None:
    async with receiver() as hooks:
        hooks.answer = lambda _n, _id: 500
        sub = await add_subscription(sessions, creditor.org_id, hooks.url)
        delivery = await add_delivery(sessions, sub, case_id=uuid.uuid4(), n=1, due=PAST)
        async with build_worker(
            ts_env.client,
            task_queue=task_queue,
            sessions=sessions,
            webhooks=local_webhooks(sessions),
        ):
            await wake_deliveries(ts_env.client, task_queue=task_queue, subscriptions=[sub.id])
            await hooks.wait_for(1)
            await walk(ts_env, hooks, SCHEDULE)  # the time-skipping server skips each wait
            await ended(ts_env, webhook_workflow_id(sub.id))

    # Eight attempts, each signed, all with the delivery's one webhook-id.
    assert len(hooks.received) == 8
    assert {r.id for r in hooks.received} == {delivery}
    assert [body["n"] for body in hooks.verified(sub.secret)] == [1] * 8
    # Between them, waits of 1, 2, 4, 8, 16, 30 and 30 minutes, each within ±10 % (jitter).
    waits = await timer_waits(ts_env, webhook_workflow_id(sub.id))
    assert len(waits) == len(SCHEDULE), waits
    for wait, minutes in zip(waits, SCHEDULE, strict=True):
        assert 0.9 * minutes * 60 - 2 <= wait <= 1.1 * minutes * 60, (waits, minutes)
    assert len({round(w / m) for w, m in zip(waits, SCHEDULE, strict=True)}) > 1  # jittered
    [row] = await deliveries(sessions, sub.id)
    assert (row.attempt_count, row.last_response_code, row.delivered_at) == (8, 500, None)
    assert row.failed_at is not None and row.next_attempt_at is None
    assert row.last_error is not None and row.last_error.startswith("HTTP 500")
    disabled = await subscription(sessions, sub.id)
    assert not disabled.is_active and disabled.consecutive_failures == 8
    assert disabled.disabled_reason is not None and "8 consecutive" in disabled.disabled_reason


async def test_a_410_disables_the_subscription_at_once_and_re_enabling_delivers_what_waited(
    ts_env: WorkflowEnvironment,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    task_queue: str,
) -> None:
    async with receiver() as hooks:
        hooks.answer = lambda n, _id: 410 if n == 0 else 200
        sub = await add_subscription(sessions, creditor.org_id, hooks.url)
        case = uuid.uuid4()  # one case: the second waits for the first
        first = await add_delivery(sessions, sub, case_id=case, n=1, due=PAST)
        second = await add_delivery(sessions, sub, case_id=case, n=2, due=PAST)
        async with build_worker(
            ts_env.client,
            task_queue=task_queue,
            sessions=sessions,
            webhooks=local_webhooks(sessions),
        ):
            await wake_deliveries(ts_env.client, task_queue=task_queue, subscriptions=[sub.id])
            await ended(ts_env, webhook_workflow_id(sub.id))
            assert len(hooks.received) == 1  # nothing more after the 410
            disabled = await subscription(sessions, sub.id)
            assert not disabled.is_active
            assert disabled.disabled_reason is not None and "410" in disabled.disabled_reason
            rows = {row.id: row for row in await deliveries(sessions, sub.id)}
            assert rows[first].attempt_count == 1 and rows[first].last_response_code == 410
            assert rows[first].failed_at is None and rows[first].next_attempt_at is not None
            assert rows[second].attempt_count == 0

            # What PATCH isActive=true does (tests/api/test_webhooks_api.py): active, woken.
            async with transaction(sessions) as session:
                await session.execute(
                    update(WebhookSubscription)
                    .where(WebhookSubscription.id == sub.id)
                    .values(is_active=True, disabled_reason=None, consecutive_failures=0)
                )
            await wake_deliveries(ts_env.client, task_queue=task_queue, subscriptions=[sub.id])
            await ts_env.sleep(dt.timedelta(minutes=2))  # the first one's retry comes due
            await hooks.wait_for(3)
    assert [r.id for r in hooks.received] == [first, first, second]
    assert all(row.delivered_at is not None for row in await deliveries(sessions, sub.id))
    assert (await subscription(sessions, sub.id)).consecutive_failures == 0


async def test_a_case_whose_event_waits_for_a_retry_holds_its_later_events_back_and_others_go_on(
    ts_env: WorkflowEnvironment,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    task_queue: str,
) -> None:
    async with receiver() as hooks:
        sub = await add_subscription(sessions, creditor.org_id, hooks.url)
        held, other = uuid.uuid4(), uuid.uuid4()
        a1 = await add_delivery(sessions, sub, case_id=held, n=1, due=PAST)
        b1 = await add_delivery(sessions, sub, case_id=other, n=2, due=PAST)
        a2 = await add_delivery(sessions, sub, case_id=held, n=3, due=PAST)
        b2 = await add_delivery(sessions, sub, case_id=other, n=4, due=PAST)
        a3 = await add_delivery(sessions, sub, case_id=held, n=5, due=PAST)
        failed_once: set[str] = set()

        def answer(_n: int, delivery: str) -> int:
            if delivery == a1 and delivery not in failed_once:
                failed_once.add(delivery)
                return 500
            return 200

        hooks.answer = answer
        async with build_worker(
            ts_env.client,
            task_queue=task_queue,
            sessions=sessions,
            webhooks=local_webhooks(sessions),
        ):
            await wake_deliveries(ts_env.client, task_queue=task_queue, subscriptions=[sub.id])
            await hooks.wait_for(3)  # a1 (refused), b1, b2
            # A new event of the other case wakes a pass while a1 waits for its retry: it goes,
            # and the held case's later events stay behind a1.
            b3 = await add_delivery(sessions, sub, case_id=other, n=6, due=PAST)
            await wake_deliveries(ts_env.client, task_queue=task_queue, subscriptions=[sub.id])
            await hooks.wait_for(4)
            await asyncio.sleep(1)
            assert sorted(r.id for r in hooks.received) == sorted([a1, b1, b2, b3])
            await ts_env.sleep(dt.timedelta(minutes=2))  # a1's retry comes due
            await hooks.wait_for(7)
    order = [r.id for r in hooks.received]
    assert [d for d in order if d in (a1, a2, a3)] == [a1, a1, a2, a3]
    assert [d for d in order if d in (b1, b2, b3)] == [b1, b2, b3]
    assert [body["n"] for body in hooks.verified(sub.secret)][-3:] == [1, 3, 5]


async def test_a_replayed_delivery_carries_the_replay_header_and_its_own_webhook_id(
    dev_env: WorkflowEnvironment,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    task_queue: str,
) -> None:
    async with receiver() as hooks:
        sub = await add_subscription(sessions, creditor.org_id, hooks.url)
        original = await add_delivery(sessions, sub, case_id=None, n=7, due=PAST)
        replay = str(uuid.uuid4())
        async with transaction(sessions) as session:
            row = await session.get(WebhookDelivery, (await deliveries(sessions, sub.id))[0].seq)
            assert row is not None
            session.add(
                WebhookDelivery(
                    id=replay,
                    subscription_id=sub.id,
                    event_id=row.event_id,
                    replay_of=original,
                    case_id=None,
                    event_type=row.event_type,
                    payload=row.payload,
                    created_at=PAST,
                    next_attempt_at=PAST,
                    attempt_count=0,
                )
            )
        async with build_worker(
            dev_env.client,
            task_queue=task_queue,
            sessions=sessions,
            webhooks=local_webhooks(sessions),
        ):
            await wake_deliveries(dev_env.client, task_queue=task_queue, subscriptions=[sub.id])
            await hooks.wait_for(2)
    by_id = {r.id: r for r in hooks.received}
    assert REPLAY_HEADER not in by_id[original].headers
    assert by_id[replay].headers[REPLAY_HEADER] == original
    assert [body["n"] for body in hooks.verified(sub.secret)] == [7, 7]


async def test_deliveries_done_longer_ago_than_the_retention_are_pruned_and_pending_ones_kept(
    sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    sub = await add_subscription(sessions, creditor.org_id, "https://hooks.example.com/x")
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    old, recent, pending, failed = [
        await add_delivery(sessions, sub, case_id=None, n=n, due=now - dt.timedelta(days=40))
        for n in range(4)
    ]
    async with transaction(sessions) as session:
        for delivery, values in (
            (old, {"delivered_at": now - dt.timedelta(days=31), "next_attempt_at": None}),
            (recent, {"delivered_at": now - dt.timedelta(days=29), "next_attempt_at": None}),
            (failed, {"failed_at": now - dt.timedelta(days=31), "next_attempt_at": None}),
        ):
            await session.execute(
                update(WebhookDelivery).where(WebhookDelivery.id == delivery).values(**values)
            )
    pruned = await ActivityEnvironment().run(
        local_webhooks(sessions).prune_deliveries, PruneRequest(now=now)
    )
    assert pruned == 2
    assert {row.id for row in await deliveries(sessions, sub.id)} == {recent, pending}
