"""Projection activities: copy workflow state into the read model, idempotently.

Each write carries the workflow's version number. A row is only overwritten by a newer version and
history entries are keyed by (case, seq), so a retried or replayed activity never duplicates or
rolls back anything.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from domain.cases import CaseProjection, CaseRecord
from store.db import transaction
from store.models import Case, CaseHistory


def _case_columns(record: CaseRecord) -> dict[str, object]:
    submission = record.submission
    return {
        "case_number": record.case_number,
        "creditor_id": record.creditor_id,
        "partner_id": record.partner_id,
        "submitted_by": record.submitted_by,
        "creditor_reference": submission.creditor_reference,
        "currency_code": submission.currency_code,
        "amount_to_recover": submission.amount_to_recover,
        "date": submission.date,
        "due_date": submission.due_date,
        "claim_description": submission.claim_description,
        "debtor_name": submission.debtor.name,
        "debtor": submission.debtor.model_dump(mode="json"),
        "bank_account_id": submission.bank_account_id,
        "status": record.status.value,
        "sub_status": record.sub_status.value if record.sub_status else None,
        "last_status_change": record.last_status_change,
        "created_at": record.created_at,
    }


class ProjectionActivities:
    """Activities that write the read model; one instance per worker, sharing its engine."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    @activity.defn
    async def project_case(self, projection: CaseProjection) -> None:
        """Write the case row as of ``projection.version`` and append its new history entries."""
        record = projection.case
        async with transaction(self._sessions) as session:
            row = await session.get(Case, record.case_id, with_for_update=True)
            if row is None:
                session.add(
                    Case(
                        id=record.case_id,
                        version=projection.version,
                        updated_at=projection.modified_at,
                        **_case_columns(record),
                    )
                )
                await session.flush()
            elif row.version < projection.version:
                for column, value in _case_columns(record).items():
                    setattr(row, column, value)
                row.version = projection.version
                row.updated_at = projection.modified_at
            if projection.new_history:
                seqs = [entry.seq for entry in projection.new_history]
                existing = set(
                    await session.scalars(
                        select(CaseHistory.seq).where(
                            CaseHistory.case_id == record.case_id, CaseHistory.seq.in_(seqs)
                        )
                    )
                )
                session.add_all(
                    CaseHistory(
                        case_id=record.case_id,
                        seq=entry.seq,
                        timestamp=entry.timestamp,
                        status=entry.status.value,
                        sub_status=entry.sub_status.value if entry.sub_status else None,
                        changed_by=entry.changed_by,
                        note=entry.note,
                    )
                    for entry in projection.new_history
                    if entry.seq not in existing
                )
