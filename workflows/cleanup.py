"""``ChatCleanupWorkflow``: the nightly chat-task cleanup (SPEC.md "Communication center").

Started every night by the ``chat-cleanup`` Temporal Schedule (``schedules.py``). It looks at
EVERY NewMessage / ReplyToChat task that was open and overdue when the night's run started, asks
the reply-expected classifier about each (it may call an LLM) and, only on a confident "no reply
expected", has the owning workflow solve the task with the reason. Everything else stays open.

Why it is built this way (100,000 overdue tasks in under five minutes on two cores; docs/
operations.md "Schedules"):

- **Keyset pages.** The night's tasks are those overdue since before the first run's start
  (``cutoff``, fixed for the night, so tasks going overdue meanwhile wait for the next night) and
  are walked in (overdue_since, id) order from a cursor, an index range scan
  (``ix_tasks_overdue``) whatever the page's depth; a dismissed task leaves the open set
  behind the cursor, so nothing is skipped or seen twice.
- **One activity per page** (``CleanupActivities.clean_chat_page``): it reads the page's tasks
  and the end of their threads in a few set-based queries, classifies them concurrently and
  sends the dismissals concurrently (both bounded by settings), heartbeating. Activities per
  task would cost three history events and a worker round trip each: 100k tasks, 300k+ events.
- **Counts come from the page's result only.** A page retried after a crash does its work again
  (dismissal is an update the owning workflow refuses for a task no longer open) and counts the
  tasks its first attempt closed from the read model, so the night's totals count each task
  once.
- **Continue-as-new** after ``pages_per_run`` pages carries cutoff, cursor and running totals, so
  the history stays a few dozen events per run however many tasks the night has.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.cleanup import CleanupActivities
    from domain.chat import CleanupInput, CleanupPage, CleanupReport

# A page that keeps failing (ten attempts over some 10 minutes) fails the night, visibly, rather than
# running into the next one (the schedule skips a night while one still runs).
PAGE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    maximum_interval=timedelta(minutes=2),
    maximum_attempts=10,
)


@workflow.defn
class ChatCleanupWorkflow:
    """One nightly pass over the stale chat tasks, page by page."""

    @workflow.run
    async def run(self, input: CleanupInput) -> CleanupReport:
        """Dismiss the overdue chat tasks no reply is expected for; report what was done."""
        cutoff = input.cutoff or workflow.now()
        after = input.after
        totals = input.totals
        for _ in range(input.pages_per_run):
            result = await workflow.execute_activity_method(
                CleanupActivities.clean_chat_page,
                CleanupPage(
                    cutoff=cutoff, after=after, size=input.page_size, classified=totals.classified
                ),
                start_to_close_timeout=timedelta(minutes=30),
                heartbeat_timeout=timedelta(minutes=2),
                retry_policy=PAGE_RETRY,
                summary="clean a page of overdue chat tasks",
            )
            totals = totals.plus(result.counts)
            after = result.next
            workflow.set_current_details(_details(totals))
            if after is None:
                return totals
        workflow.continue_as_new(
            input.model_copy(update={"cutoff": cutoff, "after": after, "totals": totals})
        )


def _details(report: CleanupReport) -> str:
    return (
        f"Looked at {report.looked_at} overdue chat tasks: {report.resolved} dismissed, "
        f"{report.left_open} left open, {report.already_gone} already answered or gone."
    )
