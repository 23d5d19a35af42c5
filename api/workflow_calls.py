"""Calls from the API to workflows, with Temporal failures translated to problem+json."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import Problem
from domain.errors import HTTP_STATUS_OF

T = TypeVar("T")


async def call(operation: Awaitable[T]) -> T:
    """Await a client call; business rejections become 4xx, outages 503 (safe to retry)."""
    try:
        return await operation
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        if isinstance(cause, ApplicationError) and cause.type:
            raise Problem(HTTP_STATUS_OF.get(cause.type, 422), cause.type, cause.message) from exc
        raise
    except WorkflowUpdateRPCTimeoutOrCancelledError as exc:
        raise Problem(
            503,
            "workflow_busy",
            "The case did not confirm the request in time; it is safe to retry the same request.",
            headers={"Retry-After": "5"},
        ) from exc
    except RPCError as exc:
        if exc.status is RPCStatusCode.DEADLINE_EXCEEDED:
            raise Problem(
                503,
                "workflow_busy",
                "The case did not confirm the request in time; it is safe to retry the same request.",
                headers={"Retry-After": "5"},
            ) from exc
        raise Problem(
            503,
            "temporal_unavailable",
            "The workflow service is unreachable; it is safe to retry the same request.",
            headers={"Retry-After": "5"},
        ) from exc
