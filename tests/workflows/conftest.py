"""Fixtures for running the workflows directly (no API in between)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionRequest,
    ListOpenWorkflowExecutionsRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain import search_attributes as sa
from tests.support import TEST_DATA_CONVERTER, bundled_binary
from worker import build_worker

# Creating a case writes about ten history events in one workflow task (start, update, the
# signal to the creditor account and the projection as local activities, update completion).
# From this many events on, the server suggests continue-as-new (to the next workflow task); a
# fresh run starts with 3, so the carried-over run is not told to continue again.
SUGGEST_CONTINUE_AS_NEW_AT = 6


@pytest.fixture(scope="module")
async def short_history_env() -> AsyncIterator[WorkflowEnvironment]:
    """A dev server that suggests continue-as-new after a few events instead of 4,096.

    The workflow code is unchanged: it continues as new because the server really says so
    (``workflow.info().is_continue_as_new_suggested()``), as it would in production.
    """
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=bundled_binary("temporal"),
        data_converter=TEST_DATA_CONVERTER,
        search_attributes=sa.ALL,
        dev_server_log_level="error",
        dev_server_extra_args=[
            "--dynamic-config-value",
            f"limit.historyCount.suggestContinueAsNew={SUGGEST_CONTINUE_AS_NEW_AT}",
        ],
    )
    yield env
    await env.shutdown()


async def terminate_workflows_on(client: Client, task_queue: str) -> None:
    """Terminate every open workflow of ``task_queue`` (the time-skipping server lists open
    workflows but cannot filter them by queue, hence one describe each)."""
    request = ListOpenWorkflowExecutionsRequest(namespace=client.namespace, maximum_page_size=500)
    while True:
        page = await client.workflow_service.list_open_workflow_executions(request)
        for info in page.executions:
            described = await client.workflow_service.describe_workflow_execution(
                DescribeWorkflowExecutionRequest(
                    namespace=client.namespace, execution=info.execution
                )
            )
            if described.execution_config.task_queue.name != task_queue:
                continue
            # Its children too (a notice, workflows/notices.py): abandoned by their parent, they
            # outlive its termination, and the test server does not list them as open.
            executions = [(child.workflow_id, child.run_id) for child in described.pending_children]
            executions.append((info.execution.workflow_id, info.execution.run_id))
            for workflow_id, run_id in executions:
                try:
                    await client.get_workflow_handle(workflow_id, run_id=run_id).terminate(
                        reason="test finished"
                    )
                except RPCError as exc:
                    if exc.status is not RPCStatusCode.NOT_FOUND:
                        raise
        if not page.next_page_token:
            return
        request.next_page_token = page.next_page_token


@pytest.fixture
async def ts_leaves_no_workflows(
    ts_env: WorkflowEnvironment, task_queue: str
) -> AsyncIterator[None]:
    """After the test, end the workflows it started on the shared time-skipping server.

    A workflow left behind without a worker would stop the clock for every later test: once one
    of its timers fires, its workflow task waits for a worker that never comes, and the test
    server does not skip time while any workflow task is outstanding (``ts_env.sleep`` then
    waits in real time).
    """
    yield
    await terminate_workflows_on(ts_env.client, task_queue)


@pytest.fixture
async def ts_worker(
    ts_env: WorkflowEnvironment,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    ts_leaves_no_workflows: None,
) -> AsyncIterator[Worker]:
    """The real worker (every workflow and activity) on the time-skipping server, for this test."""
    async with build_worker(ts_env.client, task_queue=task_queue, sessions=sessions) as running:
        yield running
