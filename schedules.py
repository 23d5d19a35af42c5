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

CHAT_CLEANUP = "chat-cleanup"
CHAT_CLEANUP_CRON = "0 2 * * *"  # every night at 02:00 UTC

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


async def ensure_schedules(client: Client, *, task_queue: str) -> None:
    """Create caseloop's schedules that do not exist yet (existing ones are left as they are)."""
    try:
        await client.create_schedule(CHAT_CLEANUP, chat_cleanup_schedule(task_queue))
        logger.info("created schedule %r (%s UTC)", CHAT_CLEANUP, CHAT_CLEANUP_CRON)
    except ScheduleAlreadyRunningError:
        pass
