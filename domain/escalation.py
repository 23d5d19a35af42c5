"""The escalation ladder (issue 13 item 3): what happens around a task's deadline, per task type.

Each task type's steps are a column of the task catalogue (``TaskSpec.ladder``, domain/tasks.py;
docs/tasks.md shows them). A step is a moment, counted in business days of the owning
organisation's calendar from the task's deadline (``Anchor.DEADLINE``) or from when the task was
raised (``Anchor.CREATED``), always at ``WORKING_HOUR`` local time of a business day (the breach
the first such moment after the deadline; the task is overdue from the deadline itself), and an
audience that gets one e-mail when it comes. Each kind of
step emits its event (``task.deadline_approaching``, ``task.overdue``, ``task.escalated``) and
sends its template; SignContract's contract reminders are steps of the same ladder.

The moments are computed once, like a deadline, by the projection activity that writes the task
(``ladder_plan``, recorded in history with its answer: docs/decisions/0005), never with a clock
in workflow code; the workflow that owns the task keeps the plan and its main loop's one timer
wakes at the earliest moment of all deadlines and steps (workflows/base.py). A step fires once
per deadline it was planned for: postponing plans the ladder again for the new deadline, and a
moment already past when a plan is made is not in it, so a step that fired for the old deadline
does not fire again unless the new deadline comes near or breaches too.

Who "admins" are: an organisation's active users (docs/decisions/0014-escalation-ladder.md).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo

from domain.base import ApiModel
from domain.calendar import add_business_days, is_business_day
from domain.mail import MailCategory


class Anchor(StrEnum):
    DEADLINE = "deadline"  # counted from the task's (current) deadline
    CREATED = "created"  # counted from when the task was raised


class Audience(StrEnum):
    """Who gets a step's e-mail; always users of the organisation that owns the task."""

    ASSIGNEE = "assignee"  # the task's assignee, else the organisation's active users
    ORGANISATION = "organisation"  # the organisation's active users
    ADMINS = "admins"  # the organisation's admins: its active users (decision 0014)


class StepKind(StrEnum):
    APPROACHING = "approaching"
    BREACH = "breach"
    ESCALATION = "escalation"
    CONTRACT_REMINDER = "contract_reminder"


@dataclass(frozen=True)
class KindSpec:
    """What every step of a kind does: its event (None: none), e-mail category and template."""

    event: str | None
    category: MailCategory
    template: str
    subject: str  # formatted with ``title``


# The breach step's event is the overdue flag's own ``task.overdue`` (``TaskBook.mark_overdue``
# emits it, one per breach); the step adds its e-mail and its record on the task.
TASK_DEADLINE_APPROACHING = "task.deadline_approaching"
TASK_OVERDUE = "task.overdue"
TASK_ESCALATED = "task.escalated"
KINDS: dict[StepKind, KindSpec] = {
    StepKind.APPROACHING: KindSpec(
        TASK_DEADLINE_APPROACHING,
        MailCategory.DEADLINE_ESCALATION,
        "task_deadline_approaching",
        "Due soon: {title}",
    ),
    StepKind.BREACH: KindSpec(
        TASK_OVERDUE, MailCategory.DEADLINE_ESCALATION, "task_overdue", "Overdue: {title}"
    ),
    StepKind.ESCALATION: KindSpec(
        TASK_ESCALATED,
        MailCategory.DEADLINE_ESCALATION,
        "task_escalated",
        "Escalated, still overdue: {title}",
    ),
    StepKind.CONTRACT_REMINDER: KindSpec(
        None, MailCategory.CONTRACT_REMINDER, "contract_reminder", "Reminder: {title}"
    ),
}


@dataclass(frozen=True)
class Step:
    """One rung: ``business_days`` from its anchor (negative: before it; 0: at it)."""

    name: str  # unique within a ladder; recorded on the task when it fires
    kind: StepKind
    business_days: int
    anchor: Anchor
    audience: Audience

    @property
    def spec(self) -> KindSpec:
        return KINDS[self.kind]

    def describe(self) -> str:
        days = abs(self.business_days)
        if self.business_days == 0:
            when = "at the first working moment after the deadline"
        elif self.anchor is Anchor.CREATED:
            when = f"{days} bd after it opened"
        else:
            when = f"{days} bd {'before' if self.business_days < 0 else 'after'} the deadline"
        return f"{self.name}: {when}, to {self.audience.value}"


Ladder = tuple[Step, ...]

APPROACHING = Step("approaching", StepKind.APPROACHING, -1, Anchor.DEADLINE, Audience.ASSIGNEE)
BREACH = Step("breach", StepKind.BREACH, 0, Anchor.DEADLINE, Audience.ASSIGNEE)
ESCALATION = Step("escalation", StepKind.ESCALATION, 2, Anchor.DEADLINE, Audience.ADMINS)
# Remind the assignee 1 bd before, tell them at breach, escalate to the admins 2 bd after.
STANDARD: Ladder = (APPROACHING, BREACH, ESCALATION)
# Chat tasks: the partner-wrote e-mail already told the creditor, and the nightly cleanup
# dismisses the overdue ones that need no reply; what still stands 2 bd after is escalated.
CHAT: Ladder = (ESCALATION,)
# SignContract: at most 3 follow-ups to the creditor's users while it is open.
CONTRACT: Ladder = tuple(
    Step(f"reminder-{n}", StepKind.CONTRACT_REMINDER, days, Anchor.CREATED, Audience.ORGANISATION)
    for n, days in enumerate((2, 5, 10), start=1)
)
NONE: Ladder = ()


class LadderPlan(ApiModel):
    """A task's ladder as planned for its ``deadline`` (None: planned without one): the moment
    of each step still to come when the plan was made, by step name."""

    deadline: dt.datetime | None = None
    moments: dict[str, dt.datetime] = {}


class FiredStep(ApiModel):
    """A step that fired: when, and the deadline it fired for (None: counted from creation)."""

    step: str
    at: dt.datetime
    deadline: dt.datetime | None = None


class LadderRequest(ApiModel):
    """What a task's plan is computed from (``plan_ladder``)."""

    ladder: list[str]  # its step names, to check the plan against the table
    created: dt.datetime
    deadline: dt.datetime | None
    country: str
    timezone: str


# The local hour of a business day at which a ladder step comes (its e-mail is sent then): a
# warning or an escalation reaches people at work, never at midnight.
WORKING_HOUR = dt.time(9)


def working_moment(day: dt.date, timezone: str) -> dt.datetime:
    """``WORKING_HOUR`` local time on ``day``, in UTC (DST-correct for that date)."""
    return dt.datetime.combine(day, WORKING_HOUR, tzinfo=ZoneInfo(timezone)).astimezone(dt.UTC)


def next_working_moment(at: dt.datetime, *, country: str, timezone: str) -> dt.datetime:
    """The first working moment at or after ``at``: ``WORKING_HOUR`` of its local date if that
    is a business day not yet past it, else of the next business day."""
    day = at.astimezone(ZoneInfo(timezone)).date()
    while not is_business_day(day, country) or working_moment(day, timezone) < at:
        day += dt.timedelta(days=1)
    return working_moment(day, timezone)


def business_days_before(
    end: dt.datetime, days: int, *, country: str, timezone: str
) -> dt.datetime:
    """The working moment of the ``days``-th business day before ``end``'s local date: 1 bd
    before a deadline at the end of Tuesday is Monday 09:00, so most of the Monday is left."""
    day = end.astimezone(ZoneInfo(timezone)).date()
    counted = 0
    while counted < days:
        day -= dt.timedelta(days=1)
        if is_business_day(day, country):
            counted += 1
    return working_moment(day, timezone)


def business_days_after(
    start: dt.datetime, days: int, *, country: str, timezone: str
) -> dt.datetime:
    """The working moment of the ``days``-th business day after ``start``'s local date (the
    day the end of which ``add_business_days`` answers)."""
    end = add_business_days(start, days, country=country, timezone=timezone)
    return working_moment(end.astimezone(ZoneInfo(timezone)).date(), timezone)


def moment(
    step: Step, *, created: dt.datetime, deadline: dt.datetime | None, country: str, timezone: str
) -> dt.datetime | None:
    """When ``step`` comes for a task raised at ``created`` with ``deadline`` (None: a step
    counted from a deadline the task does not have): always a working moment of the
    organisation's calendar. A step at its anchor (the breach) comes at the first working
    moment at or after it; the task is overdue from the deadline itself (``mark_overdue``)."""
    calendar = {"country": country, "timezone": timezone}
    anchor = created if step.anchor is Anchor.CREATED else deadline
    if anchor is None:
        return None
    if step.business_days == 0:
        return next_working_moment(anchor, **calendar)
    if step.business_days < 0:
        return business_days_before(anchor, -step.business_days, **calendar)
    return business_days_after(anchor, step.business_days, **calendar)


def plan_ladder(ladder: Ladder, request: LadderRequest) -> LadderPlan:
    """Every step's moment (steps that cannot come, counted from a missing deadline, left out)."""
    moments: dict[str, dt.datetime] = {}
    for step in ladder:
        when = moment(
            step,
            created=request.created,
            deadline=request.deadline,
            country=request.country,
            timezone=request.timezone,
        )
        if when is not None:
            moments[step.name] = when
    return LadderPlan(deadline=request.deadline, moments=moments)


def idempotency_key(task_id: str, step: str, deadline: dt.datetime | None) -> str:
    """The e-mail of one step of one task for one deadline: the same on every retry."""
    return f"ladder:{task_id}:{step}:{deadline.isoformat() if deadline else 'created'}"


class StepNotice(ApiModel):
    """A step that fired, whose e-mail is still to hand over: one kind of notice
    (domain/notices.py), held in the owner's ``ladder`` outbox until its ``NoticeWorkflow``
    started; that workflow's compose activity reads the e-mail from the read model."""

    kind: Literal["ladder_step"] = "ladder_step"
    task_id: str
    step: str
    deadline: dt.datetime | None = None

    @property
    def idempotency_key(self) -> str:
        return idempotency_key(self.task_id, self.step, self.deadline)
