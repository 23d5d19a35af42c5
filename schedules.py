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
from domain.digests import DigestInput
from domain.orphans import OrphanCheckInput
from domain.webhooks import RetentionInput

CHAT_CLEANUP = "chat-cleanup"
CHAT_CLEANUP_CRON = "0 2 * * *"  # every night at 02:00 UTC
WEBHOOK_RETENTION = "webhook-retention"
WEBHOOK_RETENTION_CRON = "30 3 * * *"  # every night at 03:30 UTC
# Hourly: each run sends the partner daily summaries whose local morning hour (DAILY_SUMMARY_HOUR)
# has come today and are not sent yet, so every time zone (and a missed hour) is covered.
DAILY_SUMMARY = "daily-summary"
DAILY_SUMMARY_CRON = "0 * * * *"
OVERDUE_REMINDERS = "overdue-reminders"
OVERDUE_REMINDERS_CRON = "0 6 * * *"  # every day at 06:00 UTC
# Issue 14: the cases nothing will move (domain/orphans.py), hourly.
ORPHAN_CHECK = "orphan-check"
ORPHAN_CHECK_CRON = "40 * * * *"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Nightly:
    """A scheduled job (nightly, or as often as its cron says): the workflow a schedule starts
    (its id is the schedule's name)."""

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
    # Issue 13: the partner daily summary and the overdue reminders (workflows/digests.py).
    Nightly(
        DAILY_SUMMARY,
        DAILY_SUMMARY_CRON,
        "DailySummaryWorkflow",
        DigestInput(),
        "Hourly: partner daily summaries whose morning has come",
    ),
    Nightly(
        OVERDUE_REMINDERS,
        OVERDUE_REMINDERS_CRON,
        "OverdueReminderWorkflow",
        DigestInput(),
        "Daily overdue-task reminders (at most one per user per 7 days)",
    ),
    Nightly(
        ORPHAN_CHECK,
        ORPHAN_CHECK_CRON,
        "OrphanCheckWorkflow",
        OrphanCheckInput(),
        "Hourly: the open cases nothing will move (GET /api/ops/orphans)",
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
        # A run that runs long never overlaps the next (the digests' marks and idempotency keys
        # would keep an overlap from doubling an e-mail anyway).
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
