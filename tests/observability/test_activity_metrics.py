"""``ActivityMetrics``: every activity attempt timed, every failed one counted, by name."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from temporalio import activity, workflow
from temporalio.client import WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from observability.metrics import ACTIVITY_DURATION, ACTIVITY_FAILURES
from observability.worker import ActivityMetrics


@activity.defn(name="metrics_test_flaky")
async def flaky() -> str:
    if activity.info().attempt == 1:
        raise ApplicationError("not yet", type="NotYet")
    return "done"


@activity.defn(name="metrics_test_broken")
async def broken() -> None:
    raise ValueError("never works")


@workflow.defn(name="MetricsTestWorkflow")
class MetricsTestWorkflow:
    @workflow.run
    async def run(self, fail: bool) -> str:
        once = RetryPolicy(initial_interval=timedelta(milliseconds=10), maximum_attempts=2)
        await workflow.execute_activity(
            flaky, start_to_close_timeout=timedelta(seconds=5), retry_policy=once
        )
        if fail:
            await workflow.execute_activity(
                broken,
                start_to_close_timeout=timedelta(seconds=5),
                retry_policy=RetryPolicy(maximum_attempts=1),
            )
        return "ok"


def _count(activity_name: str) -> int:
    return ACTIVITY_DURATION.count(activity_name)


async def test_activity_attempts_are_timed_and_failures_counted_by_name_and_error_type(
    dev_env: WorkflowEnvironment,
) -> None:
    queue = f"tq-{uuid.uuid4()}"
    not_yet = ACTIVITY_FAILURES.value("metrics_test_flaky", "NotYet")
    value_error = ACTIVITY_FAILURES.value("metrics_test_broken", "ValueError")
    flaky_runs, broken_runs = _count("metrics_test_flaky"), _count("metrics_test_broken")
    async with Worker(
        dev_env.client,
        task_queue=queue,
        workflows=[MetricsTestWorkflow],
        activities=[flaky, broken],
        interceptors=[ActivityMetrics()],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        with pytest.raises(WorkflowFailureError):
            await dev_env.client.execute_workflow(
                MetricsTestWorkflow.run, True, id=f"metrics-{uuid.uuid4()}", task_queue=queue
            )
    # Two attempts, the first failed; then one attempt, failed. (Local activities go through the
    # same interceptor: test_worker_metrics.py sees the projections.)
    assert _count("metrics_test_flaky") == flaky_runs + 2
    assert ACTIVITY_FAILURES.value("metrics_test_flaky", "NotYet") == not_yet + 1
    assert _count("metrics_test_broken") == broken_runs + 1
    assert ACTIVITY_FAILURES.value("metrics_test_broken", "ValueError") == value_error + 1
