"""``OrphanCheckWorkflow``: the orphan check a Schedule runs hourly (schedules.py; rules in
domain/orphans.py). One activity finds the cases nothing will move, logs and stores them; the
run's current details say how many of each kind it found."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.orphans import CHECK_ORPHANS, OrphanCheckInput, OrphanCheckResult
    from workflows.cleanup import PAGE_RETRY

CHECK_TIMEOUT = timedelta(minutes=5)


@workflow.defn
class OrphanCheckWorkflow:
    """One pass of the orphan check."""

    @workflow.run
    async def run(self, input: OrphanCheckInput) -> OrphanCheckResult:
        result = await workflow.execute_activity(
            CHECK_ORPHANS,
            input,
            start_to_close_timeout=CHECK_TIMEOUT,
            heartbeat_timeout=timedelta(minutes=1),
            retry_policy=PAGE_RETRY,
            result_type=OrphanCheckResult,
            summary="find the cases nothing will move",
        )
        workflow.set_current_details(
            f"Orphan check at {result.checked_at:%Y-%m-%d %H:%M} UTC: "
            + ", ".join(f"{count} {kind.value}" for kind, count in result.counts.items())
            + " (GET /api/ops/orphans)"
        )
        return result
