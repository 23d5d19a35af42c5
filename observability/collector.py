"""The domain gauges: computed by the worker every METRICS_COLLECT_SECONDS, served from memory.

Each collection runs a fixed set of queries, each one statement on an index (docs/operations.md,
"Metrics", has their plans on PostgreSQL with 1M tasks), whatever the number of scrapes:

- open and overdue tasks by type and side: one GROUP BY over the open tasks
  (``ix_tasks_status_order``);
- the webhook backlog: deliveries due now of active subscriptions, and how late the oldest is
  (per subscription a range of ``ix_webhook_deliveries_due``);
- blocked projections and e-mails waiting: two Temporal visibility counts
  (``ProjectionBlocked = true``, running ``SendEmailWorkflow``s);
- the orphan check's last findings: its latest ``orphan_checks`` row (the primary key), so every
  worker shows what the scheduled check found, without a visibility scan per collection.

A scrape reads the last snapshot (``collect``); a query that fails keeps its previous values,
counts ``caseloop_collector_failures_total`` and leaves ``caseloop_collector_last_success``
behind, which an alert watches.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from domain.search_attributes import PROJECTION_BLOCKED
from domain.tasks import TaskStatus
from observability.metrics import Counter
from store.models import TaskRow, WebhookDelivery, WebhookSubscription
from store.orphans import counts_of, latest_check

logger = logging.getLogger(__name__)

COLLECTOR_FAILURES = Counter(
    "caseloop_collector_failures",
    "Domain-gauge queries that failed, by query (their gauges keep the previous values).",
    ["query"],
)

_OPEN_TASKS = (
    select(
        TaskRow.type,
        TaskRow.access_level,
        func.count(),
        func.count(TaskRow.overdue_since),
    )
    .where(TaskRow.status == TaskStatus.OPEN.value)
    .group_by(TaskRow.type, TaskRow.access_level)
)


def webhook_backlog_query(now: dt.datetime) -> object:
    return (
        select(func.count(), func.min(WebhookDelivery.next_attempt_at))
        .select_from(WebhookSubscription)
        .join(WebhookDelivery, WebhookDelivery.subscription_id == WebhookSubscription.id)
        .where(WebhookSubscription.is_active, WebhookDelivery.next_attempt_at <= now)
    )


BLOCKED_QUERY = f"{PROJECTION_BLOCKED.name} = true AND ExecutionStatus = 'Running'"
EMAILS_QUERY = "WorkflowType = 'SendEmailWorkflow' AND ExecutionStatus = 'Running'"


@dataclass
class Snapshot:
    open_tasks: dict[tuple[str, str], int] = field(default_factory=dict)
    overdue_tasks: dict[tuple[str, str], int] = field(default_factory=dict)
    webhook_due: int | None = None
    webhook_lag_seconds: float | None = None
    projections_blocked: int | None = None
    emails_waiting: int | None = None
    orphans: dict[str, int] = field(default_factory=dict)  # by OrphanKind, of the last check
    orphan_check_at: float | None = None
    durations: dict[str, float] = field(default_factory=dict)
    last_success: float | None = None


class DomainCollector(Collector):
    """Register it on a registry (``REGISTRY.register``) and run ``watch`` (or ``collect_once``)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], client: Client) -> None:
        self._sessions = sessions
        self._client = client
        self.snapshot = Snapshot()

    async def collect_once(self) -> bool:
        """Run every query once; whether all succeeded."""
        snapshot = self.snapshot
        ok = True
        for name, query in (
            ("tasks", self._tasks),
            ("webhooks", self._webhooks),
            ("projections_blocked", self._blocked),
            ("emails_waiting", self._emails),
            ("orphans", self._orphans),
        ):
            ok = await self._timed(name, query) and ok
        if ok:
            snapshot.last_success = time.time()
        return ok

    async def _timed(self, name: str, query: Callable[[], Awaitable[None]]) -> bool:
        start = time.perf_counter()
        try:
            await query()
        except Exception as error:
            COLLECTOR_FAILURES.inc(name)
            logger.warning("metrics: the %s query failed (%s)", name, type(error).__name__)
            return False
        finally:
            self.snapshot.durations[name] = time.perf_counter() - start
        return True

    async def _tasks(self) -> None:
        async with self._sessions() as session:
            rows = (await session.execute(_OPEN_TASKS)).all()
        self.snapshot.open_tasks = {(r[0], r[1]): int(r[2]) for r in rows}
        self.snapshot.overdue_tasks = {(r[0], r[1]): int(r[3]) for r in rows}

    async def _webhooks(self) -> None:
        now = dt.datetime.now(dt.UTC)
        async with self._sessions() as session:
            count, oldest = (await session.execute(webhook_backlog_query(now))).one()  # type: ignore[call-overload]
        self.snapshot.webhook_due = int(count)
        self.snapshot.webhook_lag_seconds = (
            max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
        )

    async def _blocked(self) -> None:
        counted = await self._client.count_workflows(BLOCKED_QUERY)
        self.snapshot.projections_blocked = counted.count

    async def _emails(self) -> None:
        counted = await self._client.count_workflows(EMAILS_QUERY)
        self.snapshot.emails_waiting = counted.count

    async def _orphans(self) -> None:
        async with self._sessions() as session:
            last = await latest_check(session)
        if last is None:
            return  # no check has run yet: the gauges stay absent
        self.snapshot.orphans = {kind.value: count for kind, count in counts_of(last).items()}
        self.snapshot.orphan_check_at = last.checked_at.timestamp()

    async def watch(self, interval: float) -> None:
        while True:
            await self.collect_once()
            await asyncio.sleep(interval)

    def collect(self) -> Iterator[Metric]:
        s = self.snapshot
        for name, help_text, values in (
            ("caseloop_open_tasks", "Open tasks by type and side.", s.open_tasks),
            (
                "caseloop_overdue_tasks",
                "Open tasks past their deadline by type and side.",
                s.overdue_tasks,
            ),
        ):
            family = GaugeMetricFamily(name, help_text, labels=["type", "side"])
            for (task_type, side), value in sorted(values.items()):
                family.add_metric([task_type, side], value)
            yield family
        family = GaugeMetricFamily(
            "caseloop_orphan_cases",
            "Open cases nothing will move, by kind (waiting_on_nobody, stalled, ended), as the "
            "last orphan check found them.",
            labels=["kind"],
        )
        for kind, value in sorted(s.orphans.items()):
            family.add_metric([kind], value)
        yield family
        scalars: tuple[tuple[str, str, float | None], ...] = (
            (
                "caseloop_webhook_deliveries_due",
                "Webhook deliveries of active subscriptions due now and not delivered.",
                s.webhook_due,
            ),
            (
                "caseloop_webhook_delivery_lag_seconds",
                "How long the oldest due webhook delivery has been due (0: none is due).",
                s.webhook_lag_seconds,
            ),
            (
                "caseloop_projections_blocked",
                "Running workflows whose read model cannot be written (ProjectionBlocked).",
                s.projections_blocked,
            ),
            (
                "caseloop_emails_waiting",
                "E-mails not sent yet: running SendEmailWorkflows (retrying a send).",
                s.emails_waiting,
            ),
            (
                "caseloop_orphan_check_last_run",
                "Unix time of the last orphan check (the hourly orphan-check schedule).",
                s.orphan_check_at,
            ),
            (
                "caseloop_collector_last_success",
                "Unix time of the last collection whose every query succeeded.",
                s.last_success,
            ),
        )
        for name, help_text, reading in scalars:
            family = GaugeMetricFamily(name, help_text)
            if reading is not None:
                family.add_metric([], reading)
            yield family
        family = GaugeMetricFamily(
            "caseloop_collector_duration_seconds",
            "How long each domain-gauge query took at its last run.",
            labels=["query"],
        )
        for query, seconds in sorted(s.durations.items()):
            family.add_metric([query], seconds)
        yield family
