"""The scheduled e-mail digests of issue 13, item 2 (SPEC.md "Notifications"): the partner daily
summary and the overdue reminders. Their rules (who is due, what a run's e-mail is keyed by)
live here; activities/digests.py reads the read model and sends, workflows/digests.py pages.

**Daily summary.** Every partner user gets, once per day of their own time zone (the user's,
else the organisation's), at the first hourly run at or after ``morning_hour`` local time, one
e-mail listing the open tasks created for their organisation's partner side in the 24 hours
before that morning hour (``summary_window``). Its idempotency key names the user and the local
date (``summary_key``). A user whose day is done (sent, or nothing to send) is marked for that
date, so later runs of the day skip them; a run that did not happen (an outage) is caught up by
the next one the same local day, with the same window and key. A whole local day without any
run is not caught up the next day (the next morning has its own 24 hours).

**Overdue reminders.** Each active user for whom any overdue task is open (assigned to them, or
unassigned and owned by their organisation) gets at most one e-mail per
``REMINDER_INTERVAL_DAYS``: a reminder's period starts on the UTC date of the run that starts it
(``reminder_period``), which is also its idempotency key's (``reminder_key``), so re-runs and
retries within the period finish that reminder and never start another.
"""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

from pydantic import Field

from domain.base import ApiModel

# The activities' names (activities/digests.py), which the workflows run.
SEND_DAILY_SUMMARIES = "send_daily_summaries"
SEND_OVERDUE_REMINDERS = "send_overdue_reminders"
DAILY_SUMMARY_HOUR = 7  # local time: the summary goes out at the first run from then on
SUMMARY_WINDOW = dt.timedelta(hours=24)
REMINDER_INTERVAL_DAYS = 7
MAX_TASKS_LISTED = 50  # per e-mail; the rest is counted ("and 12 more")


class SummaryDay(ApiModel):
    """A user's summary day: its local date and the window of task creation it lists."""

    local_date: dt.date
    start: dt.datetime
    end: dt.datetime


def summary_window(timezone: str, at: dt.datetime, morning_hour: int) -> SummaryDay | None:
    """The summary day due at ``at`` in ``timezone``, or None before its morning hour."""
    zone = ZoneInfo(timezone)
    local = at.astimezone(zone)
    if local.hour < morning_hour:
        return None
    morning = dt.datetime.combine(local.date(), dt.time(morning_hour), tzinfo=zone)
    end = morning.astimezone(dt.UTC)
    return SummaryDay(local_date=local.date(), start=end - SUMMARY_WINDOW, end=end)


def summary_key(user_id: uuid.UUID, local_date: dt.date) -> str:
    return f"daily-summary:{user_id}:{local_date.isoformat()}"


def reminder_period(today: dt.date, last_start: dt.date | None, last_sent: bool) -> dt.date | None:
    """The period whose reminder a user with overdue tasks is to get on ``today`` (UTC): a new
    one once ``REMINDER_INTERVAL_DAYS`` have passed since the last one started, the last one if
    it has not gone out yet, else None (reminded within the interval)."""
    if last_start is None or (today - last_start).days >= REMINDER_INTERVAL_DAYS:
        return today
    return None if last_sent else last_start


def reminder_key(user_id: uuid.UUID, period_start: dt.date) -> str:
    return f"overdue-reminder:{user_id}:{period_start.isoformat()}"


class DigestCounts(ApiModel):
    """What a digest run did, in users."""

    looked_at: int = 0  # users examined
    sent: int = 0  # e-mails the run sent
    already_sent: int = 0  # e-mails found sent already (a re-run, an overlapping run)
    nothing_to_send: int = 0  # users with nothing to list
    not_due: int = 0  # users done already (their day, their 7 days) or before their morning
    unaddressable: int = 0  # users whose e-mail address is not one an e-mail can go to

    def plus(self, other: DigestCounts) -> DigestCounts:
        return DigestCounts(
            **{name: getattr(self, name) + getattr(other, name) for name in type(self).model_fields}
        )


class DigestInput(ApiModel):
    """A digest run, or the continuation of one (workflows/digests.py). The schedule starts it
    with the defaults; the run fixes ``at`` (its start) and carries the cursor and totals."""

    page_size: int = Field(default=500, ge=1, le=5000)
    pages_per_run: int = Field(default=40, ge=1)  # then continue-as-new
    at: dt.datetime | None = None  # the moment the run is for; None: its start
    after: uuid.UUID | None = None  # the last user of the previous page
    totals: DigestCounts = DigestCounts()


class DigestPage(ApiModel):
    """Up to ``size`` users after ``after`` (in id order), examined for the moment ``at``."""

    at: dt.datetime
    after: uuid.UUID | None
    size: int = Field(ge=1)


class DigestPageResult(ApiModel):
    counts: DigestCounts
    next: uuid.UUID | None  # None: that was the last page
