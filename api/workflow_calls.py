"""Calls from the API to workflows, with Temporal failures translated to problem+json."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

from fastapi import Request
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.workflow import _UpdateDefinition

from api.deadline import current_budget
from api.deps import end_read
from api.errors import Problem, WorkflowRejection
from domain.errors import HTTP_STATUS_OF
from domain.update_ids import client_update_id
from store.accounts import Principal

T = TypeVar("T")
logger = logging.getLogger(__name__)

RETRY_SAFE = "it is safe to retry the same request."
# What Temporal says (NOT_FOUND) to an update sent to a workflow that has completed.
COMPLETED = "workflow execution already completed"


RETRY_AFTER = {"Retry-After": "5"}


def _unavailable(code: str, detail: str) -> Problem:
    return Problem(503, code, f"{detail}; {RETRY_SAFE}", headers=RETRY_AFTER)


def _busy() -> Problem:
    return _unavailable(
        "workflow_busy",
        "The case did not confirm the request in time (it may still do so: a retry with the "
        "same Idempotency-Key returns the result)",
    )


async def call(operation: Awaitable[T], *, changes: bool = True) -> T:
    """Await a client call within the request's budget (``api.deadline``); business rejections
    become 4xx, outages and a budget run out 503 (safe to retry). ``changes``: the call asks a
    workflow to change something, so its success marks the request's change as applied."""
    budget = current_budget()
    await end_read()  # no database connection held while the workflow works
    try:
        async with asyncio.timeout(budget.remaining() if budget else None):
            result = await operation
    except TimeoutError as exc:
        raise _busy() from exc
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.type:
            status = HTTP_STATUS_OF.get(cause.type, 422)
            headers = RETRY_AFTER if status == 503 else None
            raise WorkflowRejection(status, cause.type, cause.message, headers=headers) from exc
        raise
    except WorkflowUpdateRPCTimeoutOrCancelledError as exc:
        raise _busy() from exc
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            if COMPLETED in exc.message:
                # A case workflow ends once the case is Resolved or Closed and nothing is left
                # to do: the case still exists (the read model keeps it), it only cannot change.
                raise Problem(
                    409, "case_finished", "The case has ended; nothing can change it any more."
                ) from exc
            raise Problem(404, "not_found", "The case or account is not running.") from exc
        if exc.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.RESOURCE_EXHAUSTED):
            # RESOURCE_EXHAUSTED: e.g. the limit on a workflow's in-flight updates was reached.
            raise _busy() from exc
        if exc.status is RPCStatusCode.UNAVAILABLE:
            raise _unavailable(
                "temporal_unavailable", "The workflow service is unreachable"
            ) from exc
        # Anything else is a misconfiguration (e.g. search attributes not registered), not an
        # outage: say what Temporal said, so ops can fix it.
        logger.error("Temporal rejected a call: %s (%s)", exc.message, exc.status)
        raise Problem(
            502, "temporal_rejected", f"The workflow service refused: {exc.message}"
        ) from exc
    except RuntimeError as exc:
        # A lazy client that has never reached the server raises this on first use.
        if "client connect" not in str(exc):
            raise
        raise _unavailable("temporal_unavailable", "The workflow service is unreachable") from exc
    if changes and budget is not None:
        budget.applied = True
    return result


def update_id(request: Request, principal: Principal) -> str | None:
    """The update id for a request with an Idempotency-Key (``domain.update_ids``: the workflow
    remembers it across continue-as-new); None without one, and the SDK picks a random id that
    the workflow does not remember (nobody can send it again)."""
    key = request.headers.get("Idempotency-Key")
    return client_update_id(principal.org_id, key) if key else None


async def update_workflow(
    request: Request,
    principal: Principal,
    client: Client,
    workflow_id: str,
    update: Any,
    arg: Any,
    *,
    result_type: type | None = None,
) -> Any:
    """Send an update and wait for its result (the workflow answers once it is projected).

    The request's Idempotency-Key, if any, makes the update id, so a retry after a lost response
    is applied once by the workflow too. ``result_type`` overrides the update's own result type:
    ``temporalio.common.RawValue`` when the caller answers from the read model and needs only
    the update's success (its result is then not decoded into a model).
    """
    settings = request.app.state.settings
    handle = client.get_workflow_handle(workflow_id)
    name, declared = update_definition(update)
    return await call(
        handle.execute_update(
            name,
            arg,
            id=update_id(request, principal),
            result_type=result_type or declared,
            rpc_timeout=dt.timedelta(seconds=settings.api_update_timeout_seconds),
        )
    )


async def update_with_start_workflow(
    request: Request,
    principal: Principal,
    client: Client,
    start: WithStartWorkflowOperation[Any, Any],
    update: Any,
    arg: Any,
) -> Any:
    """``update_workflow`` for a workflow that may not run yet: ``start`` starts it (or joins
    it if it runs: ``USE_EXISTING``) in the same request as the update, whose first workflow
    task then takes both."""
    settings = request.app.state.settings
    name, declared = update_definition(update)
    return await call(
        client.execute_update_with_start_workflow(
            name,
            arg,
            start_workflow_operation=start,
            id=update_id(request, principal),
            result_type=declared,
            rpc_timeout=dt.timedelta(seconds=settings.api_update_timeout_seconds),
        )
    )


# Each update method's name and result type, read once (``update_definition``).
_UPDATES: dict[Any, tuple[str, type | None]] = {}


def update_definition(update: Any) -> tuple[str, type | None]:
    """The name and result type of a workflow's update method, read once: the SDK reads them
    from the method on every call with an ``isinstance`` against a runtime-checkable protocol
    (about 50 µs), less than half of that when given the name."""
    found = _UPDATES.get(update)
    if found is None:
        found = _UPDATES[update] = _UpdateDefinition.get_name_and_result_type(update)
    return found
