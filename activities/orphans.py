"""The orphan check's side effects (rules in domain/orphans.py): run its visibility queries,
log each case found, and store the run's findings (``orphan_checks``) for the ops endpoint and
the workers' ``caseloop_orphan_cases`` gauge.

Cost, whatever the number of cases: one visibility count per kind, and a listing of at most
``listed`` workflows per kind; an ended workflow found is described once (is a later run of it
running? then the case has moved on: a reset, a restart). One insert, one prune.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.client import Client, WorkflowExecution

from domain.enums import CaseStatus
from domain.ids import case_id_of
from domain.orphans import (
    CHECK_ORPHANS,
    ORPHAN_MEANINGS,
    OrphanCheckInput,
    OrphanCheckResult,
    OrphanFinding,
    OrphanKind,
    queries,
)
from domain.search_attributes import CASE_STATUS, NEXT_STEP_AT
from store.db import transaction
from store.orphans import store_check

logger = logging.getLogger(__name__)

_STATUSES = {status.value for status in CaseStatus}


class OrphanActivities:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        client: Client,
        *,
        stalled_after: dt.timedelta,
        listed: int = 200,
    ) -> None:
        self._sessions = sessions
        self._client = client
        self._stalled_after = stalled_after
        self._listed = listed

    @activity.defn(name=CHECK_ORPHANS)
    async def check_orphans(self, input: OrphanCheckInput) -> OrphanCheckResult:
        """Find the cases nothing will move, log each, store the run; answer with it."""
        now = dt.datetime.now(dt.UTC)
        counts: dict[OrphanKind, int] = {}
        findings: list[OrphanFinding] = []
        for kind, query in queries(now, self._stalled_after).items():
            found = [
                finding
                async for execution in self._client.list_workflows(query, limit=self._listed)
                if (finding := await self._finding(kind, execution)) is not None
            ]
            activity.heartbeat(kind.value)
            # An ended case counts once its later runs are ruled out, so among the ``listed``
            # newest only; the server counts the others (their listing may be cut there).
            counts[kind] = (
                len(found)
                if kind is OrphanKind.ENDED
                else (await self._client.count_workflows(query)).count
            )
            findings += found
        for finding in findings:
            logger.warning(
                "orphan case %s (workflow %s): %s",
                finding.case_id,
                finding.workflow_id,
                ORPHAN_MEANINGS[finding.kind],
            )
        result = OrphanCheckResult(checked_at=now, counts=counts, findings=findings)
        await self._store(result)
        logger.info(
            "orphan check: %s",
            ", ".join(f"{count} {kind.value}" for kind, count in counts.items()),
        )
        return result

    async def _finding(
        self, kind: OrphanKind, execution: WorkflowExecution
    ) -> OrphanFinding | None:
        attributes = execution.typed_search_attributes
        status = attributes.get(CASE_STATUS)
        finding = OrphanFinding(
            kind=kind,
            case_id=case_id_of(execution.id),
            workflow_id=execution.id,
            run_id=execution.run_id,
            status=CaseStatus(status) if status in _STATUSES else None,
            next_step_at=attributes.get(NEXT_STEP_AT) if kind is OrphanKind.STALLED else None,
            execution_status=execution.status.name if execution.status else None,
        )
        if kind is OrphanKind.ENDED:
            latest = await self._client.get_workflow_handle(execution.id).describe()
            if latest.run_id != execution.run_id:
                return None  # a later run took over (a reset, a restart): the case is its
        return finding

    async def _store(self, result: OrphanCheckResult) -> None:
        async with transaction(self._sessions) as session:
            await store_check(session, result)
