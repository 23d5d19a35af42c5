"""The one table that maps status + subStatus to the portal lifecycle (SPEC.md "Case lifecycle")."""

from domain.enums import CaseStatus, Lifecycle, SubStatus

S = CaseStatus
SS = SubStatus
L = Lifecycle

# (status, subStatus or None) -> lifecycle. A status listed with None also covers any sub-status
# not listed for it, so a new sub-status never leaves a case without a lifecycle.
LIFECYCLE_TABLE: dict[tuple[CaseStatus, SubStatus | None], Lifecycle] = {
    (S.CREATED, None): L.PENDING_VERIFICATION,
    (S.VALIDATED, None): L.PENDING_VERIFICATION,
    (S.VALIDATED, SS.COLLECTING_QUOTES): L.COLLECTING_QUOTES,
    (S.VALIDATED, SS.PENDING_QUOTE_SELECTION): L.PENDING_QUOTE_SELECTION,
    (S.ASSIGNED, None): L.PENDING_VERIFICATION,
    (S.IN_COLLECTION, None): L.ACTIVE,
    (S.PAYMENT_PLAN, None): L.ACTIVE,
    (S.ON_HOLD, SS.MORE_INFO_REQUIRED): L.MORE_INFO_REQUIRED,
    (S.ON_HOLD, None): L.PAUSED,
    (S.RESOLVED, None): L.CLOSED,
    (S.CLOSED, None): L.CLOSED,
}


def lifecycle_of(status: CaseStatus, sub_status: SubStatus | None) -> Lifecycle:
    """The portal lifecycle for a status and sub-status."""
    return LIFECYCLE_TABLE.get((status, sub_status)) or LIFECYCLE_TABLE[(status, None)]


def current_stage(status: CaseStatus, sub_status: SubStatus | None) -> str | None:
    """The collection stage (seed 002 ``currentStage``) while a partner works the case."""
    if sub_status is SS.LEGAL_PROCEEDINGS_INITIATED:
        return "Legal"
    if status in (S.IN_COLLECTION, S.PAYMENT_PLAN):
        return "Pre-legal"
    return None


def statuses_for(lifecycle: Lifecycle) -> list[tuple[CaseStatus, SubStatus | None, bool]]:
    """The table rows showing as ``lifecycle``: (status, subStatus, is_catch_all)."""
    return [
        (status, sub, sub is None)
        for (status, sub), shown in LIFECYCLE_TABLE.items()
        if shown is lifecycle
    ]


# What each lifecycle means to a creditor (seed 004's table), shown beside it in the portal.
LIFECYCLE_MEANINGS: dict[Lifecycle, str] = {
    L.PENDING_VERIFICATION: (
        "Your case is being reviewed by the platform and/or the collection partner. "
        "No action needed from you yet."
    ),
    L.ACTIVE: (
        "The collection partner has accepted your case and is actively working on recovering "
        "the debt."
    ),
    L.MORE_INFO_REQUIRED: (
        "The partner needs additional information from you. Check your Tasks for details."
    ),
    L.COLLECTING_QUOTES: (
        "Your case is being offered to collection partners. You will receive quotes to choose from."
    ),
    L.PENDING_QUOTE_SELECTION: (
        "Quotes have been submitted. You need to select a partner to proceed."
    ),
    L.PAUSED: (
        "Collection activity is temporarily paused. The partner may resume or close the case."
    ),
    L.CLOSED: (
        "The case has ended. Check the close reason to understand the outcome (paid, partially "
        "paid, or other)."
    ),
}


# Debitura's lifecycle names (its ``Statuses`` filter) for the caseloop lifecycle that means the
# same; its other names (PendingContractSigning, PendingVerificationInternal, Merged) have no
# lifecycle of their own here and are refused (docs/api.md "Differences from Debitura's API").
DEBITURA_LIFECYCLE_NAMES: dict[str, Lifecycle] = {
    "Leads": L.COLLECTING_QUOTES,
    "LeadsQuoteGiven": L.PENDING_QUOTE_SELECTION,
    "NeedsAdditionalDetails": L.MORE_INFO_REQUIRED,
}


def _folded(text: str) -> str:
    return "".join(text.split()).casefold()


_LIFECYCLE_NAMES: dict[str, Lifecycle] = {
    **{_folded(lifecycle.value): lifecycle for lifecycle in Lifecycle},
    **{_folded(lifecycle.name.replace("_", "")): lifecycle for lifecycle in Lifecycle},
    **{_folded(name): lifecycle for name, lifecycle in DEBITURA_LIFECYCLE_NAMES.items()},
}


def lifecycle_names() -> set[str]:
    """The spellings ``lifecycle_named`` reads as written: each label and name, and Debitura's."""
    return {
        *(lifecycle.value for lifecycle in Lifecycle),
        *(lifecycle.value.replace(" ", "") for lifecycle in Lifecycle),
        *DEBITURA_LIFECYCLE_NAMES,
    }


def lifecycle_named(text: str) -> Lifecycle | None:
    """The lifecycle a ``Statuses`` value names: its label (``Pending Verification``) or name
    (``PendingVerification``), in any letter case, or one of Debitura's names above."""
    return _LIFECYCLE_NAMES.get(_folded(text))
