"""Small time helpers that take the clock as an argument (workflows pass ``workflow.now()``),
and the one range every timestamp caseloop accepts must fall in."""

from datetime import UTC, datetime

# Every timestamp the API accepts, in a body or a query, and every one a workflow keeps, lies in
# the years 1900 to 2099, read on its own clock (its offset). Outside them a value may not
# convert to UTC or be stored by every database (a deadline at 9999-12-31T23:59:59-01:00
# overflows on the way to UTC); inside them it always does, and nothing a creditor, a partner or
# ops does needs a moment before 1900 or in the 22nd century. A year is what a JSON Schema
# pattern can say, so the OpenAPI document states the rule exactly (``YEARS_SCHEMA``).
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
TIMESTAMP_RANGE = "in the years 1900 to 2099"
YEARS_SCHEMA = {"pattern": r"^(19|20)[0-9]{2}-"}


def as_utc(moment: datetime) -> datetime:
    """The same instant in UTC; naive datetimes (as SQLite returns them) are taken as UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def check_timestamp(moment: datetime) -> datetime:
    """``moment`` if it lies in the accepted years (a naive one is read as UTC); ``ValueError``
    (pydantic's 422 naming the field) otherwise."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if not EARLIEST.year <= moment.year < LATEST.year:
        raise ValueError(f"must be {TIMESTAMP_RANGE}")
    return moment


def whole_days_between(start: datetime, end: datetime) -> int:
    """Completed 24-hour periods from start to end, never negative."""
    return max(0, (as_utc(end) - as_utc(start)).days)
