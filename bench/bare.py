"""The bare Temporal baseline: a workflow whose update changes a field, and nothing else.

Run as its own worker process (``python -m bench.bare ADDRESS TASK_QUEUE``) so that its CPU time
and memory are separable from caseloop's worker. It uses the SDK's defaults: the default
sandboxed workflow runner, the default data converter, the default workflow cache.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid

from temporalio import workflow
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.worker import Worker


@workflow.defn(name="BareCase")
class BareCase:
    """A case reduced to a dictionary of fields that updates change."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}
        self.closed = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self.closed)

    @workflow.update
    async def change(self, change: dict[str, str]) -> int:
        """Set some fields; answers how many fields the case has."""
        self.fields.update(change)
        return len(self.fields)

    @workflow.signal
    def close(self) -> None:
        self.closed = True


async def start(client: Client, task_queue: str, change: dict[str, str]) -> WorkflowHandle:
    """Update-with-start a new bare case (the bare counterpart of ``POST /api/cases``)."""
    operation = WithStartWorkflowOperation(
        BareCase.run,
        id=f"bare-{uuid.uuid4()}",
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    await client.execute_update_with_start_workflow(
        BareCase.change, change, start_workflow_operation=operation
    )
    return await operation.workflow_handle()


async def change(handle: WorkflowHandle, change: dict[str, str]) -> None:
    """One bare update round trip."""
    await handle.execute_update(BareCase.change, change)


async def serve(address: str, task_queue: str) -> None:
    client = await Client.connect(address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with Worker(client, task_queue=task_queue, workflows=[BareCase]):
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], sys.argv[2]))
