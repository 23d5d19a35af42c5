"""The worker creates caseloop's schedules once, and leaves them as they are afterwards."""

from __future__ import annotations

import datetime as dt
import itertools

from temporalio.client import Client, ScheduleActionStartWorkflow
from temporalio.testing import WorkflowEnvironment

from schedules import (
    CHAT_CLEANUP,
    CHAT_CLEANUP_CRON,
    DAILY_SUMMARY,
    DAILY_SUMMARY_CRON,
    NIGHTLY,
    OVERDUE_REMINDERS,
    OVERDUE_REMINDERS_CRON,
    WEBHOOK_RETENTION,
    WEBHOOK_RETENTION_CRON,
    ensure_schedules,
)


async def delete_schedules(client: Client) -> None:
    """What ``ensure_schedules`` created (the dev server is shared by the session's tests)."""
    for job in NIGHTLY:
        await client.get_schedule_handle(job.name).delete()


async def test_the_nightly_cleanup_schedule_is_created_once(
    dev_env: WorkflowEnvironment, task_queue: str
) -> None:
    client = dev_env.client
    handle = client.get_schedule_handle(CHAT_CLEANUP)
    try:
        await ensure_schedules(client, task_queue=task_queue)
        await ensure_schedules(client, task_queue=task_queue)  # a restarted worker
        described = await handle.describe()
        action = described.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert (action.workflow, action.task_queue) == ("ChatCleanupWorkflow", task_queue)
        # The server keeps the cron as calendars: the next runs are at 02:00 UTC, a day apart.
        upcoming = described.info.next_action_times[:2]
        assert [(t.hour, t.minute, t.utcoffset()) for t in upcoming] == [
            (2, 0, dt.timedelta(0))
        ] * 2
        assert upcoming[1] - upcoming[0] == dt.timedelta(days=1)
        assert CHAT_CLEANUP_CRON == "0 2 * * *"
        schedules = [s.id async for s in await client.list_schedules()]
        assert schedules.count(CHAT_CLEANUP) == 1
    finally:
        await delete_schedules(client)


async def test_the_nightly_webhook_retention_schedule_is_created_once(
    dev_env: WorkflowEnvironment, task_queue: str
) -> None:
    client = dev_env.client
    handle = client.get_schedule_handle(WEBHOOK_RETENTION)
    try:
        await ensure_schedules(client, task_queue=task_queue)
        await ensure_schedules(client, task_queue=task_queue)  # a restarted worker
        described = await handle.describe()
        action = described.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert (action.workflow, action.task_queue) == ("WebhookRetentionWorkflow", task_queue)
        upcoming = described.info.next_action_times[:2]
        assert [(t.hour, t.minute) for t in upcoming] == [(3, 30)] * 2
        assert WEBHOOK_RETENTION_CRON == "30 3 * * *"
        schedules = [s.id async for s in await client.list_schedules()]
        assert schedules.count(WEBHOOK_RETENTION) == 1
    finally:
        await delete_schedules(client)


async def test_the_daily_summary_runs_hourly_and_the_overdue_reminders_daily_once_each(
    dev_env: WorkflowEnvironment, task_queue: str
) -> None:
    client = dev_env.client
    try:
        await ensure_schedules(client, task_queue=task_queue)
        await ensure_schedules(client, task_queue=task_queue)  # a restarted worker
        summary = await client.get_schedule_handle(DAILY_SUMMARY).describe()
        action = summary.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert (action.workflow, action.task_queue) == ("DailySummaryWorkflow", task_queue)
        upcoming = summary.info.next_action_times[:3]
        assert [t.minute for t in upcoming] == [0, 0, 0]
        assert {b - a for a, b in itertools.pairwise(upcoming)} == {dt.timedelta(hours=1)}
        reminders = await client.get_schedule_handle(OVERDUE_REMINDERS).describe()
        action = reminders.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        assert (action.workflow, action.task_queue) == ("OverdueReminderWorkflow", task_queue)
        upcoming = reminders.info.next_action_times[:2]
        assert [(t.hour, t.minute) for t in upcoming] == [(6, 0)] * 2
        assert upcoming[1] - upcoming[0] == dt.timedelta(days=1)
        assert (DAILY_SUMMARY_CRON, OVERDUE_REMINDERS_CRON) == ("0 * * * *", "0 6 * * *")
        schedules = [s.id async for s in await client.list_schedules()]
        assert schedules.count(DAILY_SUMMARY) == 1 and schedules.count(OVERDUE_REMINDERS) == 1
    finally:
        await delete_schedules(client)
