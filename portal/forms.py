"""Reading form and query fields typed by people: dates in the user's time zone, amounts."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from api.errors import invalid


def day_bound(value: str, zone: str, *, end: bool, errors: list[str]) -> dt.datetime | None:
    """A date field as the first (or, with ``end``, the last) moment of that day in ``zone``,
    in UTC; None when empty. A malformed date adds its message to ``errors``."""
    if not value:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        errors.append(f"{value!r} is not a date (YYYY-MM-DD).")
        return None
    moment = dt.datetime.combine(day, dt.time.max if end else dt.time.min, tzinfo=ZoneInfo(zone))
    return moment.astimezone(dt.UTC)


def end_of_day(value: str, zone: str, field: str = "deadline") -> dt.datetime:
    """A picked date as the end of that day in ``zone`` (deadlines end with their day); a 422
    naming ``field`` when it is not a date."""
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise invalid(field, "pick a date") from None
    return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=ZoneInfo(zone))


def amount(value: str, errors: list[str]) -> Decimal | None:
    """An amount field (a comma is a decimal point too); None when empty or malformed (which
    adds its message to ``errors``)."""
    if not value:
        return None
    try:
        number = Decimal(value.replace(",", "."))
    except InvalidOperation:
        number = Decimal("NaN")
    if not number.is_finite() or number < 0:
        errors.append(f"{value!r} is not an amount.")
        return None
    return number
