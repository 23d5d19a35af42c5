"""A workflow whose read model cannot be written takes no new updates.

Every task-owning workflow projects each change before it answers (read-your-writes). When a
projection fails for good (``TaskOwnerWorkflow._await_projection_repair``), a new update could be
applied but never projected: its caller would wait forever, and enough of them exhaust the
server's limit on in-flight updates, so that even ops cannot reach the case. This interceptor
refuses them at once instead, for every update of every such workflow (``refuse_while_blocked``).
It sits inside ``ApplyUpdatesOnce``, so an update applied before is still answered from memory.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.worker import (
    HandleUpdateInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)


def _refuse_if_blocked() -> None:
    refuse = getattr(workflow.instance(), "refuse_while_blocked", None)
    if refuse is not None:
        refuse()


class _RefuseWhileBlocked(WorkflowInboundInterceptor):
    def handle_update_validator(self, input: HandleUpdateInput) -> None:
        _refuse_if_blocked()  # rejected before it is accepted: nothing reaches history
        super().handle_update_validator(input)

    async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
        _refuse_if_blocked()  # updates without a validator
        return await super().handle_update_handler(input)


class RefuseWhileBlocked(Interceptor):
    """Worker interceptor: see the module docstring (the replayer needs it too)."""

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return _RefuseWhileBlocked
