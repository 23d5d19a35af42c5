"""The orphan check's rules (issue 14, item 4): which cases it reports and how it finds them.

Every open case must always have a next step: a side that owes one, or a timer that will move
it (domain/waiting.py). The check (a Temporal Schedule running ``OrphanCheckWorkflow``, its
activity in activities/orphans.py) reports three kinds, each found by one visibility query on
the case workflows' search attributes (no read-model scan):

- ``waiting_on_nobody``: a running case workflow whose ``WaitingOn`` is ``Nobody``;
- ``stalled``: a running case workflow whose ``NextStepAt`` passed more than
  ``ORPHAN_STALLED_AFTER_MINUTES`` ago: its timer should have fired and moved it (and
  republished), so its workflow tasks are not running (a worker down, a workflow task failing);
- ``ended``: a case workflow that ended without finishing the case (terminated, failed, timed
  out) while its ``CaseStatus`` is open, and no later run of it is running: nothing will ever
  move the case again. Visibility keeps ended runs for the namespace's retention period only.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Final
from uuid import UUID

from domain.base import ApiModel
from domain.enums import CaseStatus
from domain.search_attributes import CASE_STATUS, NEXT_STEP_AT, WAITING_ON
from domain.transitions import FINISHED
from domain.waiting import Waiter

CHECK_ORPHANS: Final = "check_orphans"
CASE_WORKFLOW: Final = "CaseWorkflow"


class OrphanKind(StrEnum):
    WAITING_ON_NOBODY = "waiting_on_nobody"
    STALLED = "stalled"
    ENDED = "ended"


ORPHAN_MEANINGS: Final = {
    OrphanKind.WAITING_ON_NOBODY: "open, with no open task, no side that owes a step, no timer",
    OrphanKind.STALLED: "its next timer passed long ago and did not move it",
    OrphanKind.ENDED: "its workflow ended (terminated, failed) while the case is open",
}

_CASES = f"WorkflowType = '{CASE_WORKFLOW}'"
_RUNNING = f"{_CASES} AND ExecutionStatus = 'Running'"
WAITING_ON_NOBODY_QUERY: Final = f"{_RUNNING} AND {WAITING_ON.name} = '{Waiter.NOBODY.value}'"
_OPEN = " AND ".join(f"{CASE_STATUS.name} != '{status.value}'" for status in FINISHED)
ENDED_QUERY: Final = (
    f"{_CASES} AND ExecutionStatus IN ('Terminated', 'Failed', 'TimedOut', 'Canceled') AND {_OPEN}"
)


def stalled_query(before: dt.datetime) -> str:
    """Running cases whose next timer was due before ``before``."""
    at = before.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{_RUNNING} AND {NEXT_STEP_AT.name} < '{at}'"


def queries(now: dt.datetime, stalled_after: dt.timedelta) -> dict[OrphanKind, str]:
    return {
        OrphanKind.WAITING_ON_NOBODY: WAITING_ON_NOBODY_QUERY,
        OrphanKind.STALLED: stalled_query(now - stalled_after),
        OrphanKind.ENDED: ENDED_QUERY,
    }


class OrphanFinding(ApiModel):
    """One case the check reports: ids and enums only."""

    kind: OrphanKind
    case_id: UUID | None
    workflow_id: str
    run_id: str | None = None
    status: CaseStatus | None = None
    next_step_at: dt.datetime | None = None  # a stalled case's overdue timer
    execution_status: str | None = None  # an ended case's: Terminated, Failed...


class OrphanCheckInput(ApiModel):
    """The Schedule's input (nothing to choose: the rules are here, the limits in settings)."""


class OrphanCheckResult(ApiModel):
    checked_at: dt.datetime
    counts: dict[OrphanKind, int]
    findings: list[OrphanFinding]  # the first ``ORPHAN_CHECK_LISTED`` of each kind

    @property
    def total(self) -> int:
        return sum(self.counts.values())
