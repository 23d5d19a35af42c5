"""The business calendar: properties over many instants, countries and DST changes."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.calendar import (
    END_OF_DAY,
    add_business_days,
    add_calendar_days,
    business_days_between,
    is_business_day,
)

ORGS = [
    ("DK", "Europe/Copenhagen"),
    ("DE", "Europe/Berlin"),
    ("GB", "Europe/London"),
    ("US", "America/New_York"),
    ("AU", "Australia/Sydney"),
]
instants = st.datetimes(
    min_value=dt.datetime(2024, 1, 1),
    max_value=dt.datetime(2030, 12, 31),
    timezones=st.just(dt.UTC),
)


@settings(max_examples=300, deadline=None)
@given(start=instants, days=st.integers(1, 30), org=st.sampled_from(ORGS))
def test_deadline_is_a_business_day_at_local_end_of_day_n_business_days_later(
    start: dt.datetime, days: int, org: tuple[str, str]
) -> None:
    country, timezone = org
    deadline = add_business_days(start, days, country=country, timezone=timezone)
    local = deadline.astimezone(ZoneInfo(timezone))
    assert deadline.tzinfo is dt.UTC
    assert local.weekday() < 5
    assert is_business_day(local.date(), country)
    assert local.time() == END_OF_DAY, "DST never shifts the local end of day"
    assert business_days_between(start, deadline, country=country, timezone=timezone) == days


def test_friday_in_denmark_plus_7_business_days() -> None:
    friday_noon = dt.datetime(2026, 11, 27, 11, 0, tzinfo=dt.UTC)  # Friday 12:00 in Copenhagen
    deadline = add_business_days(friday_noon, 7, country="DK", timezone="Europe/Copenhagen")
    # Mon 30 Nov .. Tue 8 Dec are the 7 business days; end of day is 23:59:59 CET = 22:59:59 UTC.
    assert deadline == dt.datetime(2026, 12, 8, 22, 59, 59, tzinfo=dt.UTC)


def test_danish_easter_holidays_are_skipped() -> None:
    wednesday = dt.datetime(2026, 4, 1, 9, 0, tzinfo=dt.UTC)
    deadline = add_business_days(wednesday, 1, country="DK", timezone="Europe/Copenhagen")
    # Maundy Thursday, Good Friday, the weekend and Easter Monday are not business days.
    assert deadline.astimezone(ZoneInfo("Europe/Copenhagen")).date() == dt.date(2026, 4, 7)


def test_local_date_decides_the_start_day() -> None:
    # 23:30 UTC on Thursday is already Friday in Copenhagen.
    late = dt.datetime(2026, 11, 26, 23, 30, tzinfo=dt.UTC)
    deadline = add_business_days(late, 1, country="DK", timezone="Europe/Copenhagen")
    assert deadline.astimezone(ZoneInfo("Europe/Copenhagen")).date() == dt.date(2026, 11, 30)


def test_deadline_across_dst_end_keeps_local_end_of_day() -> None:
    before = dt.datetime(2026, 10, 23, 10, 0, tzinfo=dt.UTC)  # CEST (UTC+2)
    deadline = add_business_days(before, 2, country="DK", timezone="Europe/Copenhagen")
    assert deadline == dt.datetime(2026, 10, 27, 22, 59, 59, tzinfo=dt.UTC)  # CET (UTC+1)


def test_calendar_days_ignore_weekends() -> None:
    start = dt.datetime(2026, 11, 27, 11, 0, tzinfo=dt.UTC)
    deadline = add_calendar_days(start, 10, timezone="Europe/Copenhagen")
    assert deadline.astimezone(ZoneInfo("Europe/Copenhagen")).date() == dt.date(2026, 12, 7)


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError):
        add_business_days(dt.datetime(2026, 1, 1), 1, country="DK", timezone="Europe/Copenhagen")
    with pytest.raises(ValueError):
        add_business_days(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), 0, country="DK", timezone="UTC")
