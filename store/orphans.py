"""The orphan check's runs (``orphan_checks``): stored by the check (activities/orphans.py),
read by ``GET /api/ops/orphans`` and the workers' ``caseloop_orphan_cases`` gauge."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.orphans import OrphanCheckResult, OrphanKind
from store.models import OrphanCheck

KEEP_CHECKS = 48  # the runs kept (two days of hourly runs)


async def store_check(session: AsyncSession, result: OrphanCheckResult) -> None:
    """Add a run and drop all but the newest ``KEEP_CHECKS``."""
    session.add(
        OrphanCheck(
            checked_at=result.checked_at,
            waiting_on_nobody=result.counts.get(OrphanKind.WAITING_ON_NOBODY, 0),
            stalled=result.counts.get(OrphanKind.STALLED, 0),
            ended=result.counts.get(OrphanKind.ENDED, 0),
            findings=[f.model_dump(mode="json", by_alias=True) for f in result.findings],
        )
    )
    await session.flush()
    newest = select(OrphanCheck.id).order_by(OrphanCheck.id.desc()).limit(KEEP_CHECKS)
    await session.execute(delete(OrphanCheck).where(OrphanCheck.id.not_in(newest)))


async def latest_check(session: AsyncSession) -> OrphanCheck | None:
    """The last run of the check, or None before the first."""
    return (
        await session.execute(select(OrphanCheck).order_by(OrphanCheck.id.desc()).limit(1))
    ).scalar_one_or_none()


def counts_of(check: OrphanCheck) -> dict[OrphanKind, int]:
    return {
        OrphanKind.WAITING_ON_NOBODY: check.waiting_on_nobody,
        OrphanKind.STALLED: check.stalled,
        OrphanKind.ENDED: check.ended,
    }
