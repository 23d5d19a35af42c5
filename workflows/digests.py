"""The digest jobs the Schedules start (schedules.py; rules in domain/digests.py):
``DailySummaryWorkflow`` (hourly: the partner users whose morning has come) and
``OverdueReminderWorkflow`` (daily: everyone with overdue tasks and no reminder for 7 days).

Both walk the users in id order, one activity per page (activities/digests.py: a few queries
and the page's e-mails sent concurrently, bounded), fix the moment they are for (``at``, the
first run's start) so a retried page decides as its first attempt did, and continue as new
every ``pages_per_run`` pages. A page that keeps failing fails the run, visibly; nothing is
lost by it: the daily summary's next hourly run catches up the users whose day is not marked
done, and the next reminder run finishes a reminder whose period was started.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.digests import (
        SEND_DAILY_SUMMARIES,
        SEND_OVERDUE_REMINDERS,
        DigestCounts,
        DigestInput,
        DigestPage,
        DigestPageResult,
    )
    from workflows.cleanup import PAGE_RETRY

# A page's e-mails each claim their copy for this long plus SEND_CLAIM_MARGIN (domain/mail.py):
# a page retried after a crash waits that long for the copies the crashed attempt had in flight.
PAGE_TIMEOUT = timedelta(minutes=5)


async def _walk(activity: str, input: DigestInput, what: str) -> DigestCounts:
    at = input.at or workflow.now()
    after = input.after
    totals = input.totals
    for _ in range(input.pages_per_run):
        result = await workflow.execute_activity(
            activity,
            DigestPage(at=at, after=after, size=input.page_size),
            start_to_close_timeout=PAGE_TIMEOUT,
            heartbeat_timeout=timedelta(minutes=1),
            retry_policy=PAGE_RETRY,
            result_type=DigestPageResult,
            summary=f"{what}: a page of users",
        )
        totals = totals.plus(result.counts)
        after = result.next
        workflow.set_current_details(
            f"{what}: looked at {totals.looked_at} users, sent {totals.sent}, "
            f"{totals.already_sent} sent already, {totals.nothing_to_send} with nothing to send, "
            f"{totals.not_due} not due."
        )
        if after is None:
            return totals
    workflow.continue_as_new(input.model_copy(update={"at": at, "after": after, "totals": totals}))


@workflow.defn
class DailySummaryWorkflow:
    """One hourly pass: the partner daily summaries due now (or missed earlier today)."""

    @workflow.run
    async def run(self, input: DigestInput) -> DigestCounts:
        return await _walk(SEND_DAILY_SUMMARIES, input, "Daily summary")


@workflow.defn
class OverdueReminderWorkflow:
    """One daily pass: the overdue reminders due today."""

    @workflow.run
    async def run(self, input: DigestInput) -> DigestCounts:
        return await _walk(SEND_OVERDUE_REMINDERS, input, "Overdue reminders")
