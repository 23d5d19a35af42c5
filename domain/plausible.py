"""Plausible business dates: the one range every invoice, due and payment date must lie in.

These rules need no clock, so the API and the workflows validate with the same types. "Not in the
future" needs today's date in the user's time zone: the API checks it (``api.deps.not_in_future``).
Models that read stored records back (``Payment``, ``CaseView``) keep plain dates, so a rule
tightened later never makes existing data unreadable.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field

from domain.base import not_a_number
from domain.time import EARLIEST, LATEST, YEARS_DESCRIPTION

# The same years as every timestamp (domain/time.py): 1900 to 2099.
EARLIEST_DATE = EARLIEST.date()
LATEST_DATE = LATEST.date() - dt.timedelta(days=1)
# The longest payment term: a due date at most this long after its invoice date (five years).
MAX_PAYMENT_TERM = dt.timedelta(days=1826)


def _plausible_date(day: dt.date) -> dt.date:
    if not EARLIEST_DATE <= day <= LATEST_DATE:
        raise ValueError(
            f"must lie between {EARLIEST_DATE.isoformat()} and {LATEST_DATE.isoformat()}"
        )
    return day


# ISO 8601 only (a number would be read as Unix time), within the years; the schema says both.
PlausibleDate = Annotated[
    dt.date,
    BeforeValidator(not_a_number),
    AfterValidator(_plausible_date),
    Field(description=YEARS_DESCRIPTION),
]


def _date_of_timestamp(value: object) -> object:
    """The day an ISO 8601 date-time names (``2026-12-01T00:00:00``, as Debitura's SDK sends
    an invoice's dates), as written; anything else is left to the date's own validation."""
    if isinstance(value, str) and len(value) > 10 and value[10:11] in ("T", "t", " "):
        try:
            return dt.datetime.fromisoformat(value).date()
        except ValueError:
            return value  # not a date-time either: the date's own error names it
    return value


# An invoice's ``date`` and ``dueDate``: a PlausibleDate, also sent as a date-time (whose time
# is dropped). The schema keeps ``format: date``, the form caseloop answers with.
InvoiceDate = Annotated[PlausibleDate, BeforeValidator(_date_of_timestamp)]


def check_payment_term(invoice_date: dt.date, due_date: dt.date) -> None:
    """A due date lies on or after its invoice date and at most ``MAX_PAYMENT_TERM`` after it."""
    if due_date < invoice_date:
        raise ValueError("must not be before date")
    if due_date - invoice_date > MAX_PAYMENT_TERM:
        raise ValueError(f"must be at most {MAX_PAYMENT_TERM.days} days after date")
