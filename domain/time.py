"""Small time helpers that take the clock as an argument (workflows pass ``workflow.now()``),
and the one range every timestamp caseloop accepts must fall in."""

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator

# Every timestamp the API accepts, in a body or a query, and every one a workflow keeps, lies in
# [EARLIEST, LATEST). Outside it a value cannot be converted to UTC, stored by every database or
# computed with (a deadline at 9999-12-31T23:59:59-01:00 overflows on the way to UTC); nothing a
# creditor, a partner or ops does needs a moment before 1900 or in the 22nd century.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
TIMESTAMP_RANGE = "between 1900-01-01T00:00:00Z and 2099-12-31T23:59:59Z"


def as_utc(moment: datetime) -> datetime:
    """The same instant in UTC; naive datetimes (as SQLite returns them) are taken as UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def check_timestamp(moment: datetime) -> datetime:
    """``moment`` if it lies in the accepted range (a naive one is read as UTC); ``ValueError``
    (pydantic's 422 naming the field) otherwise."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # Check the wall-clock year first: converting a moment near year 1 or 9999 to UTC overflows.
    if not EARLIEST.year <= moment.year < LATEST.year or not EARLIEST <= as_utc(moment) < LATEST:
        raise ValueError(f"must be {TIMESTAMP_RANGE}")
    return moment


# A timestamp parameter (query strings; ApiModel fields are checked by ``domain.base``).
Timestamp = Annotated[datetime, AfterValidator(check_timestamp)]


def whole_days_between(start: datetime, end: datetime) -> int:
    """Completed 24-hour periods from start to end, never negative."""
    return max(0, (as_utc(end) - as_utc(start)).days)
