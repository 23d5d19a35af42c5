"""Calls from the API to workflows, with Temporal failures translated to problem+json."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable
from typing import Any, TypeVar

from fastapi import Request
from temporalio.client import (
    Client,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import Problem
from domain.errors import HTTP_STATUS_OF

T = TypeVar("T")

RETRY_SAFE = "it is safe to retry the same request."


def _unavailable(code: str, detail: str) -> Problem:
    return Problem(503, code, f"{detail}; {RETRY_SAFE}", headers={"Retry-After": "5"})


async def call(operation: Awaitable[T]) -> T:
    """Await a client call; business rejections become 4xx, outages 503 (safe to retry)."""
    try:
        return await operation
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.type:
            raise Problem(HTTP_STATUS_OF.get(cause.type, 422), cause.type, cause.message) from exc
        raise
    except (WorkflowUpdateRPCTimeoutOrCancelledError, RPCError) as exc:
        if isinstance(exc, RPCError) and exc.status is RPCStatusCode.NOT_FOUND:
            raise Problem(404, "not_found", "The case or account is not running.") from exc
        if isinstance(exc, RPCError) and exc.status is not RPCStatusCode.DEADLINE_EXCEEDED:
            raise _unavailable(
                "temporal_unavailable", "The workflow service is unreachable"
            ) from exc
        raise _unavailable("workflow_busy", "The case did not confirm the request in time") from exc


async def update_workflow(
    request: Request, client: Client, workflow_id: str, update: Any, arg: Any
) -> Any:
    """Send an update and wait for its result (the workflow answers once it is projected).

    The request's Idempotency-Key, if any, is the update id, so a retry after a lost response is
    applied once by the workflow too.
    """
    settings = request.app.state.settings
    handle = client.get_workflow_handle(workflow_id)
    return await call(
        handle.execute_update(
            update,
            arg,
            id=request.headers.get("Idempotency-Key"),
            rpc_timeout=dt.timedelta(seconds=settings.api_update_timeout_seconds),
        )
    )
