"""When a case's own timers fire: the monthly survey and the quote round (SPEC.md "Tasks").

Pure functions over instants; workflows call them with ``workflow.now()``. Task deadlines are not
here: they come from the task catalogue and the business calendar.
"""

from __future__ import annotations

import calendar
import datetime as dt

# UpdateCaseStatus: raised every this many months (on the day of acceptance) while the case is
# In Collection or Payment Plan; a month that comes while the case is paused raises none.
SURVEY_EVERY_MONTHS = 1
# SelectQuoteWinner: the creditor is reminded this many days after the first quote...
QUOTE_SELECTION_REMINDERS = (dt.timedelta(days=7), dt.timedelta(days=14))
# ...and the quotes expire (the case closes with close code QUOTES_EXPIRED) a week after the
# SelectQuoteWinner deadline: day 21 unless the creditor postponed the task.
QUOTES_EXPIRE_AFTER_DEADLINE = dt.timedelta(days=7)


def add_months(moment: dt.datetime, months: int) -> dt.datetime:
    """The same day and time ``months`` later; the 31st becomes the month's last day."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def next_survey_after(anchor: dt.datetime, now: dt.datetime) -> dt.datetime:
    """The first monthly anniversary of ``anchor`` that is later than ``now``."""
    months = SURVEY_EVERY_MONTHS
    while (due := add_months(anchor, months)) <= now:
        months += SURVEY_EVERY_MONTHS
    return due
