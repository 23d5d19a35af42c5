"""The deadline activity: business-day arithmetic recorded in workflow history.

One call computes the deadlines of every task a workflow task raised (a local activity, so its
answer is recorded in history and a later calendar update never moves a given deadline:
docs/decisions/0005).
"""

from __future__ import annotations

import datetime as dt

from temporalio import activity

from domain.calendar import add_business_days, add_calendar_days
from domain.tasks import DeadlineRequest


def deadline_of(request: DeadlineRequest) -> dt.datetime:
    """End of the N-th business (or calendar) day after ``start`` in the owner's calendar."""
    if request.calendar:
        return add_calendar_days(request.start, request.days, timezone=request.timezone)
    return add_business_days(
        request.start, request.days, country=request.country, timezone=request.timezone
    )


@activity.defn
async def compute_deadlines(requests: list[DeadlineRequest]) -> list[dt.datetime]:
    """The deadline of each request, in order."""
    return [deadline_of(request) for request in requests]
