"""Small time helpers that take the clock as an argument (workflows pass ``workflow.now()``),
and the one range every timestamp caseloop accepts must fall in."""

from datetime import UTC, datetime

# Every timestamp the API accepts, in a body or a query, and every one a workflow keeps, lies in
# the years 1900 to 2099, both as written (in its offset) and in UTC, which is how workflows and
# the database keep it. Outside them a value may not convert to UTC or be stored by every
# database (a deadline at 9999-12-31T23:59:59-01:00 overflows on the way to UTC), and nothing a
# creditor, a partner or ops does needs a moment before 1900 or in the 22nd century. The OpenAPI
# document says so in words (``YEARS_DESCRIPTION``): a pattern on top of a date format makes
# schema-driven generators throw nearly every value away.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
TIMESTAMP_RANGE = "in the years 1900 to 2099, also in UTC"
YEARS_DESCRIPTION = "ISO 8601, in the years 1900 to 2099 (timestamps also in UTC)."


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
    # The wall-clock year first: converting a moment near year 1 or 9999 to UTC overflows. Then
    # the UTC year, since workflows and the database keep the moment in UTC.
    if not EARLIEST.year <= moment.year < LATEST.year or not EARLIEST <= as_utc(moment) < LATEST:
        raise ValueError(f"must be {TIMESTAMP_RANGE}")
    return moment


def whole_days_between(start: datetime, end: datetime) -> int:
    """Completed 24-hour periods from start to end, never negative."""
    return max(0, (as_utc(end) - as_utc(start)).days)
