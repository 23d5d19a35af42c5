"""Identifiers derived from domain ids, so every layer names a workflow the same way."""

from uuid import UUID


def case_workflow_id(case_id: UUID | str) -> str:
    """The id of the workflow that owns a case."""
    return f"case-{case_id}"


def case_number(sequence: int, year: int) -> str:
    """The human case number shown to users, e.g. ``CL-2026-000042``."""
    return f"CL-{year}-{sequence:06d}"


def creditor_workflow_id(creditor_id: UUID | str) -> str:
    """The id of the workflow that owns a creditor account's tasks."""
    return f"creditor-{creditor_id}"


def relationship_workflow_id(creditor_id: UUID | str, partner_id: UUID | str) -> str:
    """The id of the workflow that owns a creditor-partner pair's general chat."""
    return f"relationship-{creditor_id}-{partner_id}"
