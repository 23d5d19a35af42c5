"""``CaseWorkflow``: the single writer of one case's lifecycle (id ``case-{caseId}``)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.projection import ProjectionActivities
    from domain import search_attributes as sa
    from domain.cases import (
        CaseProjection,
        CaseRecord,
        CaseState,
        CaseWorkflowInput,
        HistoryEntry,
        SubmitCaseInput,
    )
    from domain.enums import CaseStatus, ChangedBy, SubStatus
    from domain.lifecycle import lifecycle_of

# Projections retry until the database is back: a case must never silently stop being projected.
PROJECTION_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
)


@workflow.defn
class CaseWorkflow:
    """Owns one case: its status, history and (later) its tasks and deadlines."""

    @workflow.init
    def __init__(self, input: CaseWorkflowInput) -> None:
        self.state = input.state or CaseState(record=input.record)

    @workflow.run
    async def run(self, input: CaseWorkflowInput) -> None:
        """Create the case, then keep the read model and visibility current as it changes."""
        if self.state.history_seq == 0:
            self.state.record.created_at = workflow.now()
            self._change_status(
                CaseStatus.CREATED, None, changed_by=ChangedBy.API, note="Case created via API"
            )
        self._publish()
        while True:
            await workflow.wait_condition(
                lambda: (
                    self.state.version > self.state.projected_version
                    or workflow.info().is_continue_as_new_suggested()
                )
            )
            await self._project()
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                await self._project()
                workflow.continue_as_new(
                    CaseWorkflowInput(record=self.state.record, state=self.state)
                )

    @workflow.update
    async def submit(self, input: SubmitCaseInput) -> CaseRecord:
        """Sent with the start: returns once the case is in the read model."""
        await workflow.wait_condition(lambda: self.state.projected_version >= 1)
        return self.state.record

    @workflow.query
    def get_state(self) -> CaseState:
        """The live state, for ops and tests."""
        return self.state

    def _change_status(
        self,
        status: CaseStatus,
        sub_status: SubStatus | None,
        *,
        changed_by: str,
        note: str | None,
    ) -> None:
        now = workflow.now()
        record = self.state.record
        record.status, record.sub_status, record.last_status_change = status, sub_status, now
        self.state.history_seq += 1
        self.state.pending_history.append(
            HistoryEntry(
                seq=self.state.history_seq,
                timestamp=now,
                status=status,
                sub_status=sub_status,
                changed_by=changed_by,
                note=note,
            )
        )
        self.state.version += 1
        workflow.upsert_search_attributes([sa.CASE_STATUS.value_set(status.value)])

    def _publish(self) -> None:
        """Current details shown on the workflow page of the Temporal UI."""
        record = self.state.record
        lifecycle = lifecycle_of(record.status, record.sub_status)
        sub = f" / {record.sub_status.value}" if record.sub_status else ""
        workflow.set_current_details(
            f"**{record.status.value}{sub}** ({lifecycle.value})\n\n"
            f"Case {record.case_number} · creditor {record.creditor_id}\n\n"
            f"Projected version {self.state.projected_version} of {self.state.version}"
        )

    async def _project(self) -> None:
        """Write everything changed since the last projection to the read model."""
        while self.state.projected_version < self.state.version:
            version = self.state.version
            history = list(self.state.pending_history)
            await workflow.execute_activity_method(
                ProjectionActivities.project_case,
                CaseProjection(
                    version=version,
                    modified_at=workflow.now(),
                    case=self.state.record,
                    new_history=history,
                ),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=PROJECTION_RETRY,
                summary=f"project v{version}",
            )
            self.state.projected_version = version
            del self.state.pending_history[: len(history)]
            self._publish()
