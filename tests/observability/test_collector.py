"""The domain gauges: one query each, read from the read model and Temporal's visibility."""

from __future__ import annotations

import datetime as dt
import uuid

from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from activities.projection import write_tasks
from domain.orphans import OrphanCheckResult, OrphanKind
from domain.tasks import AccessLevel, TaskStatus, TaskType
from observability.collector import COLLECTOR_FAILURES, DomainCollector
from store.db import create_engine, session_factory, transaction
from store.models import WebhookDelivery, WebhookSubscription
from store.orphans import store_check
from tests.observability.metrics import Scrape
from tests.support import Actor, make_task, reads


async def _seed(
    sessions: async_sessionmaker[AsyncSession], creditor: Actor, partner: Actor
) -> None:
    NOW = dt.datetime.now(dt.UTC)  # the moment the gauges are read against
    late = NOW - dt.timedelta(days=2)
    tasks = [
        make_task(creditor, access=AccessLevel.CREDITOR, case_id=None, deadline=None),
        make_task(creditor, access=AccessLevel.CREDITOR, case_id=None, deadline=late).model_copy(
            update={"overdue_since": late}
        ),
        make_task(partner, access=AccessLevel.PARTNER, case_id=None, deadline=late).model_copy(
            update={"overdue_since": late, "type": TaskType.REPLY_TO_CHAT}
        ),
        make_task(partner, access=AccessLevel.PARTNER, case_id=None, deadline=None).model_copy(
            update={"status": TaskStatus.SOLVED, "date_solved": NOW}
        ),
    ]
    active, inactive = uuid.uuid4(), uuid.uuid4()
    async with transaction(sessions) as session:
        await write_tasks(session, tasks)
        for sub, is_active in ((active, True), (inactive, False)):
            session.add(
                WebhookSubscription(
                    id=sub,
                    org_id=partner.org_id,
                    url="https://example.com/hook",
                    events=[],
                    secret="whsec_x",
                    is_active=is_active,
                    is_test_mode=False,
                    consecutive_failures=0,
                    created_utc=NOW,
                    updated_utc=NOW,
                )
            )
        await session.flush()
        for sub, next_attempt, delivered in (
            (active, NOW - dt.timedelta(minutes=10), None),  # due for 10 minutes
            (active, NOW - dt.timedelta(minutes=1), None),  # due
            (active, NOW + dt.timedelta(hours=1), None),  # a retry later: not due
            (active, None, NOW),  # delivered
            (inactive, NOW - dt.timedelta(days=1), None),  # a disabled subscription's
        ):
            session.add(
                WebhookDelivery(
                    id=str(uuid.uuid4()),
                    subscription_id=sub,
                    event_id=str(uuid.uuid4()),
                    replay_of="",
                    case_id=None,
                    event_type="case.updated",
                    payload={},
                    created_at=NOW,
                    next_attempt_at=next_attempt,
                    delivered_at=delivered,
                    failed_at=None,
                    attempt_count=0,
                )
            )


async def test_the_gauges_count_open_and_overdue_tasks_by_type_and_side_and_the_webhook_backlog(
    sessions: async_sessionmaker[AsyncSession],
    dev_env: WorkflowEnvironment,
    creditor: Actor,
    partner: Actor,
) -> None:
    await _seed(sessions, creditor, partner)
    checked_at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    async with transaction(sessions) as session:
        for nobody in (7, 2):  # the latest check counts, not an earlier one
            await store_check(
                session,
                OrphanCheckResult(
                    checked_at=checked_at,
                    counts={OrphanKind.WAITING_ON_NOBODY: nobody, OrphanKind.ENDED: 1},
                    findings=[],
                ),
            )
    collector = DomainCollector(sessions, dev_env.client)
    with reads() as statements:
        assert await collector.collect_once()
    # One statement per read-model gauge, whatever the data.
    assert len(statements) == 3, statements

    registry = CollectorRegistry()
    registry.register(collector)
    served = Scrape(generate_latest(registry).decode())
    generic, chat = TaskType.GENERIC.value, TaskType.REPLY_TO_CHAT.value
    assert served.value("caseloop_open_tasks", type=generic, side="Creditor") == 2
    assert served.value("caseloop_open_tasks", type=chat, side="Partner") == 1
    assert served.value("caseloop_open_tasks") == 3  # the solved one is not counted
    assert served.value("caseloop_overdue_tasks", type=generic, side="Creditor") == 1
    assert served.value("caseloop_overdue_tasks", type=chat, side="Partner") == 1
    assert served.value("caseloop_webhook_deliveries_due") == 2
    lag = served.value("caseloop_webhook_delivery_lag_seconds")
    assert 600 <= lag < 600 + 120, lag
    for gauge in ("caseloop_projections_blocked", "caseloop_emails_waiting"):
        assert len(served.samples(gauge)) == 1, gauge  # a count from Temporal's visibility
    assert served.value("caseloop_collector_last_success") > 0
    assert served.value("caseloop_orphan_cases", kind="waiting_on_nobody") == 2
    assert served.value("caseloop_orphan_cases", kind="stalled") == 0
    assert served.value("caseloop_orphan_cases", kind="ended") == 1
    assert served.value("caseloop_orphan_check_last_run") == checked_at.timestamp()
    assert {s.labels["query"] for s in served.samples("caseloop_collector_duration_seconds")} == {
        "tasks",
        "webhooks",
        "projections_blocked",
        "emails_waiting",
        "orphans",
    }


async def test_a_failing_query_counts_a_failure_and_keeps_the_previous_values(
    sessions: async_sessionmaker[AsyncSession],
    dev_env: WorkflowEnvironment,
    creditor: Actor,
    partner: Actor,
) -> None:
    await _seed(sessions, creditor, partner)
    collector = DomainCollector(sessions, dev_env.client)
    assert await collector.collect_once()
    before = collector.snapshot.open_tasks.copy()
    succeeded = collector.snapshot.last_success
    failures = COLLECTOR_FAILURES.value("tasks")

    down = create_engine("postgresql://caseloop@127.0.0.1:1/none")
    collector._sessions = session_factory(down)
    try:
        assert not await collector.collect_once()
    finally:
        await down.dispose()
    assert COLLECTOR_FAILURES.value("tasks") == failures + 1
    assert collector.snapshot.open_tasks == before
    assert collector.snapshot.last_success == succeeded
