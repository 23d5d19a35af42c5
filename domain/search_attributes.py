"""Typed search attributes ops use to find cases in the Temporal UI. Ids and enums only."""

from temporalio.common import SearchAttributeKey

CASE_STATUS = SearchAttributeKey.for_keyword("CaseStatus")
CREDITOR_ID = SearchAttributeKey.for_keyword("CreditorId")
PARTNER_ID = SearchAttributeKey.for_keyword("PartnerId")
OPEN_TASK_TYPES = SearchAttributeKey.for_keyword_list("OpenTaskTypes")
NEXT_DEADLINE = SearchAttributeKey.for_datetime("NextDeadline")
OVERDUE_TASK_COUNT = SearchAttributeKey.for_int("OverdueTaskCount")
# Set while the workflow's read model cannot be written (docs/operations.md: a blocked projection).
PROJECTION_BLOCKED = SearchAttributeKey.for_bool("ProjectionBlocked")
# What an open case waits on (domain/waiting.py): sides ("Creditor", "Partner", "Ops"), "Timer"
# when one is to come, or "Nobody" (an orphan); and when its next timer moves it. Cases only.
WAITING_ON = SearchAttributeKey.for_keyword_list("WaitingOn")
NEXT_STEP_AT = SearchAttributeKey.for_datetime("NextStepAt")

ALL = (
    CASE_STATUS,
    CREDITOR_ID,
    PARTNER_ID,
    OPEN_TASK_TYPES,
    NEXT_DEADLINE,
    OVERDUE_TASK_COUNT,
    PROJECTION_BLOCKED,
    WAITING_ON,
    NEXT_STEP_AT,
)

_CLI_TYPES = {
    "KEYWORD": "Keyword",
    "KEYWORD_LIST": "KeywordList",
    "DATETIME": "Datetime",
    "INT": "Int",
    "BOOL": "Bool",
}


def dev_server_flags() -> list[str]:
    """``--search-attribute Name=Type`` arguments for ``temporal server start-dev``."""
    flags: list[str] = []
    for key in ALL:
        flags += ["--search-attribute", f"{key.name}={_CLI_TYPES[key.indexed_value_type.name]}"]
    return flags
