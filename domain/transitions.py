"""Who may move a case from one status to another: one table (SPEC.md "Case lifecycle").

The workflow checks every status change against this table; the API reports a refused change as
409 ``invalid_transition`` naming the changes that are allowed from the current status.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from domain.enums import CaseStatus, Party, SubStatus
from domain.tasks import TaskType

S = CaseStatus


class CloseCode(StrEnum):
    """Why a case was closed (returned as these labels)."""

    PAID = "Paid"
    PARTIALLY_PAID = "Partially paid"
    CASE_NEVER_STARTED = "Case never started"
    INVALID_CASE_DATA = "Invalid case data"
    DEBTOR_INSOLVENT = "Debtor insolvent/bankrupt"
    DEBTOR_UNTRACEABLE = "Debtor untraceable"
    DISPUTED = "Disputed – legal action declined by client"  # noqa: RUF001 (the label has an en dash)
    WITHDRAWN_BY_CLIENT = "Withdrawn by client"
    PRE_LEGAL_EXHAUSTED = "Pre-legal exhausted – no payment"  # noqa: RUF001 (the label has an en dash)
    STATUTE_OF_LIMITATIONS = "Statute of limitations expired"
    SETTLEMENT_REJECTED = "Settlement rejected by client"
    UNRESPONSIVE_CLIENT = "Unresponsive client"
    UNECONOMICAL = "Uneconomical to pursue"
    NO_QUOTES_RECEIVED = "No quotes received"
    QUOTES_EXPIRED = "Quotes expired – not accepted"  # noqa: RUF001 (the label has an en dash)
    OTHER = "Other"


# What each close code means (seed 004, "Understanding case outcomes"), shown beside it.
CLOSE_CODE_MEANINGS: dict[CloseCode, str] = {
    CloseCode.PAID: "The debtor paid the full amount.",
    CloseCode.PARTIALLY_PAID: "The debtor paid some but not all of the debt.",
    CloseCode.CASE_NEVER_STARTED: "Collection never began on this case.",
    CloseCode.INVALID_CASE_DATA: "The case data could not be used to collect the debt.",
    CloseCode.DEBTOR_INSOLVENT: "The debtor cannot pay due to insolvency or bankruptcy.",
    CloseCode.DEBTOR_UNTRACEABLE: "The debtor could not be found.",
    CloseCode.DISPUTED: "The debtor disputed the claim and you chose not to take legal action.",
    CloseCode.WITHDRAWN_BY_CLIENT: "You asked to stop collection.",
    CloseCode.PRE_LEGAL_EXHAUSTED: (
        "All pre-legal collection efforts were completed without payment."
    ),
    CloseCode.STATUTE_OF_LIMITATIONS: "The claim is too old to be collected.",
    CloseCode.SETTLEMENT_REJECTED: "You rejected the settlement the debtor offered.",
    CloseCode.UNRESPONSIVE_CLIENT: "The partner did not get the answers it needed from you.",
    CloseCode.UNECONOMICAL: "Collecting would cost more than it could recover.",
    CloseCode.NO_QUOTES_RECEIVED: "No collection partner quoted for the case in time.",
    CloseCode.QUOTES_EXPIRED: "The quotes expired before one was selected.",
    CloseCode.OTHER: "Closed for another reason; see the case history.",
}


class Mover(StrEnum):
    """Who asks for a status change."""

    PARTNER = "partner"
    CREDITOR = "creditor"
    SYSTEM = "system"
    OPS = "ops"


P, C, SYS = Mover.PARTNER, Mover.CREDITOR, Mover.SYSTEM
WORKED = (S.IN_COLLECTION, S.PAYMENT_PLAN, S.ON_HOLD)
OPEN = (S.CREATED, S.VALIDATED, S.ASSIGNED, *WORKED)

# (from, to) -> who may make it. Staying in a status while changing the sub-status counts as a
# transition to the same status. Ops may make any transition (they unstick cases).
# fmt: off
TRANSITIONS: dict[tuple[CaseStatus, CaseStatus], frozenset[Mover]] = {
    (S.CREATED, S.CREATED): frozenset({SYS}),
    (S.CREATED, S.VALIDATED): frozenset({SYS}),
    (S.VALIDATED, S.VALIDATED): frozenset({SYS}),
    (S.VALIDATED, S.ASSIGNED): frozenset({SYS}),
    (S.ASSIGNED, S.IN_COLLECTION): frozenset({P}),
    # Declining goes through POST /reject (it also takes the partner off the case): not a status.
    (S.ASSIGNED, S.ON_HOLD): frozenset({P}),
    (S.ASSIGNED, S.CLOSED): frozenset({P}),
    (S.IN_COLLECTION, S.IN_COLLECTION): frozenset({P}),
    (S.IN_COLLECTION, S.PAYMENT_PLAN): frozenset({P}),
    (S.PAYMENT_PLAN, S.PAYMENT_PLAN): frozenset({P}),
    (S.PAYMENT_PLAN, S.IN_COLLECTION): frozenset({P}),
    **{(s, S.ON_HOLD): frozenset({P}) for s in (S.IN_COLLECTION, S.PAYMENT_PLAN)},
    (S.ON_HOLD, S.ON_HOLD): frozenset({P}),
    (S.ON_HOLD, S.IN_COLLECTION): frozenset({P, SYS}),
    (S.ON_HOLD, S.PAYMENT_PLAN): frozenset({P, SYS}),
    (S.ON_HOLD, S.ASSIGNED): frozenset({P, SYS}),  # back to the review it was held from
    **{(s, S.RESOLVED): frozenset({P}) for s in WORKED},
    # Closing: the creditor may withdraw any unfinished case; the partner may close what it holds.
    **{
        (s, S.CLOSED): frozenset({C, SYS} | ({P} if s in (S.ASSIGNED, *WORKED) else set()))
        for s in OPEN
    },
}
# fmt: on

# Sub-statuses a status may carry when a partner sets it (None: no sub-status).
SUB_STATUSES: dict[CaseStatus, tuple[SubStatus | None, ...]] = {
    S.IN_COLLECTION: (
        None,
        SubStatus.FIRST_REMINDER_SENT,
        SubStatus.SECOND_REMINDER_SENT,
        SubStatus.LEGAL_PROCEEDINGS_INITIATED,
        SubStatus.NEGOTIATION_IN_PROGRESS,
    ),
    S.PAYMENT_PLAN: (
        SubStatus.PLAN_ACTIVE,
        SubStatus.PAYMENT_RECEIVED,
        SubStatus.PAYMENT_MISSED,
        SubStatus.PLAN_DEFAULTED,
    ),
    S.RESOLVED: (
        SubStatus.PAID_IN_FULL,
        SubStatus.PARTIAL_PAYMENT_ACCEPTED,
        SubStatus.SETTLEMENT_REACHED,
    ),
    S.CLOSED: (None,),
    S.ASSIGNED: (SubStatus.PARTNER_REVIEWING,),
    S.ON_HOLD: (SubStatus.MORE_INFO_REQUIRED, SubStatus.PAUSED),
}

# A case On Hold waits for somebody: (sub-status, who must act) -> the task that asks them. The
# task is raised when the case enters that state and solved when it leaves it.
HOLD_TASKS: dict[tuple[SubStatus, Party], TaskType] = {
    (SubStatus.MORE_INFO_REQUIRED, Party.CREDITOR): TaskType.MORE_INFO_NEEDED,
    (SubStatus.PAUSED, Party.CREDITOR): TaskType.CLIENT_INPUT_REQUIRED,
    (SubStatus.PAUSED, Party.PARTNER): TaskType.FOLLOW_UP_PAUSED_CASE,
}
# Who must act in each On Hold sub-status when the change does not say (None: it must say).
HOLD_DEFAULT_PARTY: dict[SubStatus, Party | None] = {
    SubStatus.MORE_INFO_REQUIRED: Party.CREDITOR,
    SubStatus.PAUSED: None,
}

# Statuses in which the partner works the case: monthly surveys run, payments can be recorded.
ACTIVE = (S.IN_COLLECTION, S.PAYMENT_PLAN)
FINISHED = (S.RESOLVED, S.CLOSED)


# A Resolved case's close code follows from how it was resolved, unless the change names one.
RESOLUTION_CLOSE_CODES: dict[SubStatus, CloseCode] = {
    SubStatus.PAID_IN_FULL: CloseCode.PAID,
    SubStatus.PARTIAL_PAYMENT_ACCEPTED: CloseCode.PARTIALLY_PAID,
    SubStatus.SETTLEMENT_REACHED: CloseCode.PARTIALLY_PAID,
}


def close_code_for(
    status: CaseStatus, sub_status: SubStatus | None, given: CloseCode | None
) -> CloseCode | None:
    """The close code a change to ``status`` ends with (None: it needs one it was not given)."""
    if given is not None or status is not S.RESOLVED or sub_status is None:
        return given
    return RESOLUTION_CLOSE_CODES.get(sub_status)


def payment_rule_broken(
    close_code: CloseCode | None,
    sub_status: SubStatus | None,
    *,
    paid: Decimal,
    amount: Decimal,
) -> str | None:
    """Why a close code or resolution does not fit the payments recorded (None: it fits)."""
    if (close_code is CloseCode.PAID or sub_status is SubStatus.PAID_IN_FULL) and paid < amount:
        return (
            f"Paid needs recorded payments covering the amount to recover ({amount}); "
            f"{paid} is recorded"
        )
    if close_code is CloseCode.PARTIALLY_PAID or sub_status is SubStatus.PARTIAL_PAYMENT_ACCEPTED:
        if paid <= 0:
            return "a partial payment needs at least one recorded payment"
        if close_code is CloseCode.PARTIALLY_PAID and paid >= amount:
            return f"the recorded payments ({paid}) cover the amount: close as Paid"
    return None


def may_move(mover: Mover, current: CaseStatus, target: CaseStatus) -> bool:
    """Whether ``mover`` may move a case from ``current`` to ``target``."""
    if mover is Mover.OPS:
        return current not in FINISHED or target is current
    return mover in TRANSITIONS.get((current, target), frozenset())


def allowed_targets(mover: Mover, current: CaseStatus) -> list[CaseStatus]:
    """The statuses ``mover`` may move a case to from ``current``, in lifecycle order."""
    return [target for target in CaseStatus if may_move(mover, current, target)]
