"""The Temporal Schedules caseloop runs (ARCHITECTURE.md "Scheduled workflows").

``ensure_schedules`` creates each schedule unless it exists; the worker calls it at start, so a
fresh cluster gets them without a manual step and a restart changes nothing. To change a
schedule's timing on a running cluster, update it with ``temporal schedule update`` (or delete it
and restart a worker).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Nightly:
    """A nightly job: the workflow a schedule starts (its id is the schedule's name)."""

    name: str
    cron: str  # UTC
    workflow: str
    input: object
    summary: str


NIGHTLY = (
    Nightly(
        CHAT_CLEANUP,
        CHAT_CLEANUP_CRON,
        "ChatCleanupWorkflow",
        CleanupInput(),
        "Nightly chat-task cleanup",
    ),
    # Prunes webhook deliveries delivered or given up over WEBHOOKS_RETENTION_DAYS ago.
    Nightly(
        WEBHOOK_RETENTION,
        WEBHOOK_RETENTION_CRON,
        "WebhookRetentionWorkflow",
        RetentionInput(),
        "Nightly pruning of old webhook deliveries",
    ),
)


def nightly_schedule(job: Nightly, task_queue: str) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            job.workflow,
            job.input,
            id=job.name,
            task_queue=task_queue,
            static_summary=job.summary,
        ),
        spec=ScheduleSpec(cron_expressions=[job.cron]),
        # A night that runs long never overlaps the next.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_schedules(client: Client, *, task_queue: str) -> None:
    """Create caseloop's schedules that do not exist yet (existing ones are left as they are)."""
    for job in NIGHTLY:
        try:
            await client.create_schedule(job.name, nightly_schedule(job, task_queue))
            logger.info("created schedule %r (%s UTC)", job.name, job.cron)
        except ScheduleAlreadyRunningError:
            pass
