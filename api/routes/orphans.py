"""``GET /api/ops/orphans``: what the last orphan check found (domain/orphans.py), ops only.

The hourly ``orphan-check`` schedule stores each run's findings (``orphan_checks``); this reads
the latest, so a request costs one indexed row, not a visibility scan. To check now, trigger
the schedule (``temporal schedule trigger --schedule-id orphan-check``)."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter
from pydantic import Field

from api.deps import OpsPrincipal, SessionDep
from domain.base import ApiModel
from domain.orphans import ORPHAN_MEANINGS, WAITING_ON_NOBODY_QUERY, OrphanFinding, OrphanKind
from store.orphans import counts_of, latest_check

router = APIRouter(prefix="/ops/orphans", tags=["ops"])


class OrphanReport(ApiModel):
    """The last orphan check: when it ran, how many cases of each kind, and the first of them."""

    checked_at: dt.datetime | None = Field(description="null: no check has run yet")
    counts: dict[OrphanKind, int]
    meanings: dict[OrphanKind, str]
    findings: list[OrphanFinding]
    temporal_ui_query: str = Field(
        description="The Temporal UI query that lists the running cases waiting on nobody now"
    )


@router.get("", response_model=OrphanReport, responses={403: {}})
async def orphans(principal: OpsPrincipal, session: SessionDep) -> OrphanReport:
    """The open cases nothing will move, as the last orphan check found them: waiting on
    nobody, stalled (their next timer passed long ago) or ended (their workflow terminated or
    failed while the case is open). Ops only."""
    last = await latest_check(session)
    return OrphanReport(
        checked_at=last.checked_at if last is not None else None,
        counts=counts_of(last) if last is not None else {},
        meanings=dict(ORPHAN_MEANINGS),
        findings=[OrphanFinding.model_validate(f) for f in last.findings]
        if last is not None
        else [],
        temporal_ui_query=WAITING_ON_NOBODY_QUERY,
    )
