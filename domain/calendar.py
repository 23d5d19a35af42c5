"""The business calendar: deadlines in business days of an organisation's country and time zone.

A business day is a weekday that is not a public holiday of the country (``holidays`` package).
A deadline is the end of its day (23:59:59) in the organisation's time zone, stored in UTC.
Workflows never call this directly: they get deadlines from an activity, so the result is recorded
in history and a calendar update never moves a deadline already given.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

END_OF_DAY = dt.time(23, 59, 59)


@lru_cache(maxsize=512)
def _holidays(country: str, year: int) -> frozenset[dt.date]:
    return frozenset(holidays.country_holidays(country, years=year).keys())


def is_business_day(day: dt.date, country: str) -> bool:
    """A weekday that is not a public holiday in ``country``."""
    return day.weekday() < 5 and day not in _holidays(country, day.year)


def end_of_day(day: dt.date, timezone: str) -> dt.datetime:
    """23:59:59 local time on ``day``, in UTC (DST-correct for that date)."""
    return dt.datetime.combine(day, END_OF_DAY, tzinfo=ZoneInfo(timezone)).astimezone(dt.UTC)


def add_business_days(start: dt.datetime, days: int, *, country: str, timezone: str) -> dt.datetime:
    """The end of the ``days``-th business day after ``start``'s local date.

    ``start`` must be timezone-aware; the day it falls on never counts, so a task raised at any
    time on a Friday with 2 business days is due at the end of Tuesday (without holidays).
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    day = start.astimezone(ZoneInfo(timezone)).date()
    counted = 0
    while counted < days:
        day += dt.timedelta(days=1)
        if is_business_day(day, country):
            counted += 1
    return end_of_day(day, timezone)


def add_calendar_days(start: dt.datetime, days: int, *, timezone: str) -> dt.datetime:
    """The end of the local day ``days`` calendar days after ``start``."""
    if days < 1:
        raise ValueError("days must be at least 1")
    return end_of_day(
        start.astimezone(ZoneInfo(timezone)).date() + dt.timedelta(days=days), timezone
    )


def business_days_between(
    start: dt.datetime, end: dt.datetime, *, country: str, timezone: str
) -> int:
    """Business days after ``start``'s local date up to and including ``end``'s local date."""
    zone = ZoneInfo(timezone)
    day, last = start.astimezone(zone).date(), end.astimezone(zone).date()
    count = 0
    while day < last:
        day += dt.timedelta(days=1)
        count += is_business_day(day, country)
    return count
