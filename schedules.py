"""The Temporal Schedules caseloop runs (ARCHITECTURE.md "Scheduled workflows").

``ensure_schedules`` creates each schedule unless it exists; the worker calls it at start, so a
fresh cluster gets them without a manual step and a restart changes nothing. To change a
schedule's timing on a running cluster, update it with ``temporal schedule update`` (or delete it
and restart a worker).
"""

from __future__ import annotations

import logging

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)

from domain.chat import CleanupInput
from domain.webhooks import RetentionInput

CHAT_CLEANUP = "chat-cleanup"
CHAT_CLEANUP_CRON = "0 2 * * *"  # every night at 02:00 UTC
WEBHOOK_RETENTION = "webhook-retention"
WEBHOOK_RETENTION_CRON = "30 3 * * *"  # every night at 03:30 UTC

logger = logging.getLogger(__name__)


def chat_cleanup_schedule(task_queue: str) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            "ChatCleanupWorkflow",
            CleanupInput(),
            id=CHAT_CLEANUP,
            task_queue=task_queue,
            static_summary="Nightly chat-task cleanup",
        ),
        spec=ScheduleSpec(cron_expressions=[CHAT_CLEANUP_CRON]),
        # A night that runs long never overlaps the next.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


def webhook_retention_schedule(task_queue: str) -> Schedule:
    """Prune webhook deliveries delivered or given up longer than WEBHOOKS_RETENTION_DAYS ago."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            "WebhookRetentionWorkflow",
            RetentionInput(),
            id=WEBHOOK_RETENTION,
            task_queue=task_queue,
            static_summary="Nightly pruning of old webhook deliveries",
        ),
        spec=ScheduleSpec(cron_expressions=[WEBHOOK_RETENTION_CRON]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_schedules(client: Client, *, task_queue: str) -> None:
    """Create caseloop's schedules that do not exist yet (existing ones are left as they are)."""
    for name, schedule, cron in (
        (CHAT_CLEANUP, chat_cleanup_schedule(task_queue), CHAT_CLEANUP_CRON),
        (WEBHOOK_RETENTION, webhook_retention_schedule(task_queue), WEBHOOK_RETENTION_CRON),
    ):
        try:
            await client.create_schedule(name, schedule)
            logger.info("created schedule %r (%s UTC)", name, cron)
        except ScheduleAlreadyRunningError:
            pass
