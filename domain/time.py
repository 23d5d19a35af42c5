"""Small time helpers that take the clock as an argument (workflows pass ``workflow.now()``)."""

from datetime import UTC, datetime


def as_utc(moment: datetime) -> datetime:
    """The same instant in UTC; naive datetimes (as SQLite returns them) are taken as UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def whole_days_between(start: datetime, end: datetime) -> int:
    """Completed 24-hour periods from start to end, never negative."""
    return max(0, (as_utc(end) - as_utc(start)).days)
