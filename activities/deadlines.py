"""The deadline activity: business-day arithmetic recorded in workflow history."""

from __future__ import annotations

import datetime as dt

from temporalio import activity

from domain.calendar import add_business_days, add_calendar_days
from domain.tasks import DeadlineRequest


@activity.defn
async def compute_deadline(request: DeadlineRequest) -> dt.datetime:
    """End of the N-th business (or calendar) day after ``start`` in the owner's calendar."""
    if request.calendar:
        return add_calendar_days(request.start, request.days, timezone=request.timezone)
    return add_business_days(
        request.start, request.days, country=request.country, timezone=request.timezone
    )
