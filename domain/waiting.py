"""What an open case waits on: the sides that owe its next step and the next timer that will
move it (issue 14, the orphan check). Pure: the case workflow hands in its status, open tasks
and timers, publishes the answer (``WaitingOn``, ``NextStepAt``) and shows it in words in its
current details; the scheduled check (workflows/orphans.py) lists the cases that wait on nobody.

A case waits on a side when that side has an open task on it (its access level: Creditor or
Partner), or when its status makes that side owe the next step without a task of the case's own
(``IMPLICIT_WAITS``, the one table of those). It waits on a timer when a task deadline, a ladder
step or a lifecycle timer (the monthly survey, the quote round's reminders and expiry) is still
to come and would move it. An open case that waits on no side and no timer is an **orphan**:
nothing will ever move it. A finished case (Resolved, Closed) with nothing open waits on nothing,
as it should: its workflow completes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final
from uuid import UUID
from zoneinfo import ZoneInfo

from domain.chat import CHAT_TASKS, thread_of
from domain.enums import CaseStatus, SubStatus
from domain.tasks import CATALOGUE, AccessLevel, Task
from domain.transitions import ACTIVE, FINISHED

S, SS = CaseStatus, SubStatus


class Waiter(StrEnum):
    """A ``WaitingOn`` value: a side (never a name), a timer, or nobody."""

    CREDITOR = "Creditor"
    PARTNER = "Partner"
    OPS = "Ops"
    TIMER = "Timer"
    NOBODY = "Nobody"


SIDE_OF_ACCESS: Final = {AccessLevel.CREDITOR: Waiter.CREDITOR, AccessLevel.PARTNER: Waiter.PARTNER}


@dataclass(frozen=True)
class ImplicitWait:
    """A side that owes a status's next step although the case holds no task for it."""

    side: Waiter
    why: str  # completes "Waiting for <side> ..."


ANY_SUB_STATUS: Final = "any"

# (status, sub-status, or ANY_SUB_STATUS for every sub-status of the status) -> the side that owes
# the next step without a task of the case's own. A status not listed waits only on its open tasks
# and timers: Created / Validation needs info (CaseValidationNeedsInfo), a quote round
# (ProvideQuote; SelectQuoteWinner and its timers), Assigned (ReviewNewCase), On Hold (the hold's
# task: MoreInfoNeeded, ClientInputRequired or FollowUpPausedCase).
IMPLICIT_WAITS: Final[dict[tuple[CaseStatus, SubStatus | str | None], ImplicitWait]] = {
    # The tasks are the creditor account's (SignContract, AssignBankAccount: one per creditor
    # covers all its waiting cases), not the case's.
    (S.CREATED, SS.PENDING_CONTRACT_SIGNING): ImplicitWait(
        Waiter.CREDITOR, "to sign the contract (Sign Contract, on its account)"
    ),
    (S.CREATED, SS.PENDING_BANK_ACCOUNT): ImplicitWait(
        Waiter.CREDITOR, "to assign a bank account (Assign Bank Account, on its account)"
    ),
    # Ready for assignment: ops assign a partner or invite quotes; ops keep no task list.
    (S.VALIDATED, None): ImplicitWait(Waiter.OPS, "to assign a partner or invite quotes"),
    # The partner works the case (the monthly survey asks it how it goes).
    (S.IN_COLLECTION, ANY_SUB_STATUS): ImplicitWait(Waiter.PARTNER, "to collect the debt"),
    (S.PAYMENT_PLAN, ANY_SUB_STATUS): ImplicitWait(Waiter.PARTNER, "to follow the payment plan"),
}


def implicit_wait(status: CaseStatus, sub_status: SubStatus | None) -> ImplicitWait | None:
    """The side a status waits on without a task (``IMPLICIT_WAITS``), if any."""
    return IMPLICIT_WAITS.get((status, sub_status)) or IMPLICIT_WAITS.get((status, ANY_SUB_STATUS))


class TimerKind(StrEnum):
    TASK_DEADLINE = "task deadline"
    LADDER_STEP = "ladder step"
    SURVEY = "monthly survey"
    QUOTE_REMINDER = "quote reminder"
    QUOTES_EXPIRE = "quotes expire"


@dataclass(frozen=True)
class Timer:
    """A moment the case workflow wakes at, with the summary its timer carries."""

    at: dt.datetime
    kind: TimerKind
    summary: str


def moves_case(kind: TimerKind, status: CaseStatus) -> bool:
    """Whether a timer of ``kind`` moves a case in ``status``: the survey timer keeps running
    while a case is paused, but raises a survey only for an active case."""
    return kind is not TimerKind.SURVEY or status in ACTIVE


@dataclass(frozen=True)
class Waiting:
    """What a case waits on, at one moment."""

    status: CaseStatus
    sub_status: SubStatus | None
    tasks: tuple[Task, ...]  # its open tasks, by deadline
    implicit: ImplicitWait | None
    next_step: Timer | None  # the next timer that will move it

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def sides(self) -> list[Waiter]:
        found = {SIDE_OF_ACCESS[t.access_level] for t in self.tasks}
        if self.implicit is not None:
            found.add(self.implicit.side)
        return [side for side in (Waiter.CREDITOR, Waiter.PARTNER, Waiter.OPS) if side in found]

    @property
    def orphan(self) -> bool:
        """Open, and nothing will move it: no side owes a step, no timer is to come."""
        return not self.finished and not self.sides and self.next_step is None

    @property
    def waiting_on(self) -> list[str]:
        """The ``WaitingOn`` search attribute: the sides, then ``Timer`` if one is to come;
        ``Nobody`` for an orphan; empty for a finished case with nothing open."""
        values = [side.value for side in self.sides]
        if self.next_step is not None:
            values.append(Waiter.TIMER.value)
        if not values and not self.finished:
            values.append(Waiter.NOBODY.value)
        return values


def waiting_of(
    status: CaseStatus,
    sub_status: SubStatus | None,
    open_tasks: Sequence[Task],
    timers: Sequence[Timer],
    now: dt.datetime,
) -> Waiting:
    """What a case waits on now, from its status, its open tasks and its timers."""
    coming = [t for t in timers if t.at > now and moves_case(t.kind, status)]
    ordered = sorted(open_tasks, key=lambda t: (t.deadline is None, t.deadline or now))
    return Waiting(
        status=status,
        sub_status=sub_status,
        tasks=tuple(ordered),
        implicit=None if status in FINISHED else implicit_wait(status, sub_status),
        next_step=min(coming, key=lambda t: t.at, default=None),
    )


# -- in words (the case workflow's current details, ``caseloop case explain``) --------------------
def moment_in_words(moment: dt.datetime, timezone: str) -> str:
    """``3 Dec 23:59 Copenhagen``: local time in ``timezone``, named by its city."""
    local = moment.astimezone(ZoneInfo(timezone))
    place = timezone.rsplit("/", 1)[-1].replace("_", " ")
    return f"{local.day} {local:%b %H:%M} {place}"


def task_in_words(task: Task) -> str:
    """What the task's owner is to do: reply in a chat thread, or the task's label."""
    if task.type in CHAT_TASKS.values():
        thread, _ = thread_of(task.key)
        return f"to reply in {thread.value}"
    return f"on {CATALOGUE[task.type].label}"


def waiting_lines(waiting: Waiting, names: Mapping[UUID, str], *, timezone: str) -> list[str]:
    """One line per party owed a step and one for the next timer, in words. ``names``: the
    organisations of the case by id (organisation names; never a debtor's); ``timezone``: the
    case's (its creditor's), for the timer and the sides without a task."""
    lines = []
    for task in waiting.tasks:
        side = SIDE_OF_ACCESS[task.access_level].value.lower()
        who = f"{names.get(task.owner_org_id, str(task.owner_org_id))} ({side})"
        if task.deadline is None:
            when = ", no deadline"
        elif task.overdue_since is not None:
            when = f", overdue since {moment_in_words(task.deadline, task.owner_timezone)}"
        else:
            when = f" until {moment_in_words(task.deadline, task.owner_timezone)}"
        lines.append(f"Waiting for {who} {task_in_words(task)}{when}")
    if waiting.implicit is not None:
        lines.append(f"Waiting for {waiting.implicit.side.value.lower()} {waiting.implicit.why}")
    if waiting.next_step is not None:
        at = moment_in_words(waiting.next_step.at, timezone)
        lines.append(f"Next step: {waiting.next_step.summary} at {at}")
    if waiting.orphan:
        lines.append(
            "**Waiting on nobody**: no open task, no side that owes a step, no timer to come "
            "(docs/operations.md, 'A case waits on nobody')"
        )
    return lines
