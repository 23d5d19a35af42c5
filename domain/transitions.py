"""Who may move a case from one status to another: one table (SPEC.md "Case lifecycle").

The workflow checks every status change against this table; the API reports a refused change as
409 ``invalid_transition`` naming the changes that are allowed from the current status.
"""

from __future__ import annotations

from enum import StrEnum

from domain.enums import CaseStatus, SubStatus

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
    (S.ASSIGNED, S.VALIDATED): frozenset({P}),
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
    (S.ON_HOLD, S.ASSIGNED): frozenset({SYS}),
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
    # Pausing (with who must act) comes with the monthly survey; until then only "more info".
    S.ON_HOLD: (SubStatus.MORE_INFO_REQUIRED,),
}


def may_move(mover: Mover, current: CaseStatus, target: CaseStatus) -> bool:
    """Whether ``mover`` may move a case from ``current`` to ``target``."""
    if mover is Mover.OPS:
        return current not in (S.RESOLVED, S.CLOSED) or target is current
    return mover in TRANSITIONS.get((current, target), frozenset())


def allowed_targets(mover: Mover, current: CaseStatus) -> list[CaseStatus]:
    """The statuses ``mover`` may move a case to from ``current``, in lifecycle order."""
    return [target for target in CaseStatus if may_move(mover, current, target)]
