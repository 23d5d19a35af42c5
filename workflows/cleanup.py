"""``ChatCleanupWorkflow``: the nightly chat-task cleanup (SPEC.md "Communication center").

Started every night by the ``chat-cleanup`` Temporal Schedule (``schedules.py``). For each overdue
NewMessage / ReplyToChat task it asks the reply-expected classifier (an activity: it may call an
LLM) and, only on a confident "no reply expected", has the owning workflow solve the task with
the reason. Everything else stays open.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.cleanup import CleanupActivities
    from domain.chat import (
        CleanupInput,
        CleanupReport,
        DismissChatTask,
        DismissChatTaskInput,
    )

CLASSIFY_RETRY = RetryPolicy(maximum_attempts=3, initial_interval=timedelta(seconds=5))


@workflow.defn
class ChatCleanupWorkflow:
    """One nightly pass over the stale chat tasks."""

    @workflow.run
    async def run(self, input: CleanupInput) -> CleanupReport:
        """Dismiss the overdue chat tasks no reply is expected for; report what was done."""
        tasks = await workflow.execute_activity_method(
            CleanupActivities.find_stale_chat_tasks,
            input.limit,
            start_to_close_timeout=timedelta(minutes=2),
            summary="find overdue chat tasks",
        )
        report = CleanupReport(looked_at=len(tasks))
        for task in tasks:
            try:
                verdict = await workflow.execute_activity_method(
                    CleanupActivities.classify_reply,
                    task,
                    start_to_close_timeout=timedelta(minutes=1),
                    retry_policy=CLASSIFY_RETRY,
                    summary=f"classify {task.task_id}",
                )
            except ActivityError:
                workflow.logger.warning("could not classify task %s; left open", task.task_id)
                report.left_open += 1
                continue
            if verdict.reply_expected or not verdict.confident:
                report.left_open += 1
                continue
            dismissed = await workflow.execute_activity_method(
                CleanupActivities.dismiss_chat_task,
                DismissChatTask(
                    workflow_id=task.workflow_id,
                    dismiss=DismissChatTaskInput(task_id=task.task_id, reason=verdict.reason),
                ),
                start_to_close_timeout=timedelta(minutes=1),
                summary=f"dismiss {task.task_id}",
            )
            if dismissed:
                report.resolved += 1
            else:
                report.already_gone += 1
        workflow.set_current_details(
            f"Looked at {report.looked_at} overdue chat tasks: {report.resolved} dismissed, "
            f"{report.left_open} left open, {report.already_gone} already answered or gone."
        )
        return report
