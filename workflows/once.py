"""Each client-key update is applied once per workflow, across continue-as-new.

Temporal de-duplicates update ids within one run only. The API sends an update id derived from
the request's Idempotency-Key (``domain.update_ids.client_update_id``), and the client retries
after a lost answer; if the workflow continued as new in between, the retry would reach a run
that has never seen the id and apply it again (a payment recorded twice). So every task-owning
workflow remembers the client-key ids it applied in the last 24 hours (at most
``REMEMBERED_MOST``, as digests) in its state, which continue-as-new carries over, and this
interceptor answers a repeated id from the workflow's ``_recall_update`` without validating or
running the handler again. An update without a key (a random id from the SDK) is not
remembered: nobody can send it again.
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


class _ApplyUpdatesOnce(WorkflowInboundInterceptor):
    def handle_update_validator(self, input: HandleUpdateInput) -> None:
        owner = workflow.instance()
        if getattr(owner, "_update_applied", None) and owner._update_applied(input.id):
            return  # applied before: nothing to validate, the handler answers from memory
        super().handle_update_validator(input)

    async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
        owner = workflow.instance()
        if not getattr(owner, "_update_applied", None):
            return await super().handle_update_handler(input)
        applied = owner._update_applied(input.id)
        if applied is not None:
            arg = input.args[0] if input.args else None
            return owner._recall_update(input.update, arg, applied.result_id)
        result = await super().handle_update_handler(input)
        owner._remember_update(input.id, result)
        return result


class ApplyUpdatesOnce(Interceptor):
    """Worker interceptor: see the module docstring (the replayer needs it too)."""

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return _ApplyUpdatesOnce
