"""Identifiers derived from domain ids, so every layer names a workflow the same way."""

from uuid import UUID

_CASE = "case-"


def case_workflow_id(case_id: UUID | str) -> str:
    """The id of the workflow that owns a case."""
    return f"{_CASE}{case_id}"


def case_id_of(workflow_id: str) -> UUID | None:
    """The case a case workflow id (``case_workflow_id``) names, or None for any other id."""
    if not workflow_id.startswith(_CASE):
        return None
    try:
        return UUID(workflow_id.removeprefix(_CASE))
    except ValueError:
        return None


def case_number(sequence: int, year: int) -> str:
    """The human case number shown to users, e.g. ``CL-2026-000042``."""
    return f"CL-{year}-{sequence:06d}"


def creditor_workflow_id(creditor_id: UUID | str) -> str:
    """The id of the workflow that owns a creditor account's tasks."""
    return f"creditor-{creditor_id}"


def relationship_workflow_id(creditor_id: UUID | str, partner_id: UUID | str) -> str:
    """The id of the workflow that owns a creditor-partner pair's general chat."""
    return f"relationship-{creditor_id}-{partner_id}"
