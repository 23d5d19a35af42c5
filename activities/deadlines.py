"""Default deadlines: business-day arithmetic, recorded in workflow history.

The projection activities give every task they write that needs one its deadline
(``activities.projection.give_deadlines``) and answer with them, so the answer is recorded in
history and a later calendar update never moves a given deadline (docs/decisions/0005).
"""

from __future__ import annotations

import datetime as dt

from domain.calendar import add_business_days, add_calendar_days
from domain.tasks import DeadlineRequest


def deadline_of(request: DeadlineRequest) -> dt.datetime:
    """End of the N-th business (or calendar) day after ``start`` in the owner's calendar."""
    if request.calendar:
        return add_calendar_days(request.start, request.days, timezone=request.timezone)
    return add_business_days(
        request.start, request.days, country=request.country, timezone=request.timezone
    )
