"""Each API request's time budget, and whether a workflow already accepted its change.

``API_UPDATE_TIMEOUT_SECONDS`` bounds a whole request, not each RPC: a request that is still
waiting for a workflow when its budget runs out answers 503 ``workflow_busy`` with Retry-After
(``api.workflow_calls.call``). The action may still complete later; a retry with the same
Idempotency-Key then returns its result (the update id is derived from the key).

The budget also records whether a workflow accepted the request's change, so that an outage
that strikes after it (the database, while the API reads the answer back) is reported as what it
is: applied, answer unavailable (``api.errors``), never as a failure that hides the change.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from settings import Settings


@dataclass
class RequestBudget:
    """A request's deadline (event-loop time) and what happened within it so far."""

    deadline: float
    applied: bool = False  # a workflow accepted (and projected) this request's change

    def remaining(self) -> float:
        return self.deadline - asyncio.get_running_loop().time()


_budget: ContextVar[RequestBudget | None] = ContextVar("request_budget", default=None)


def current_budget() -> RequestBudget | None:
    """The running request's budget (None outside a request: the CLI, tests calling directly)."""
    return _budget.get()


class RequestDeadline:
    """ASGI middleware: gives every HTTP request its budget (read from the settings each time,
    since tests tune them)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        budget = RequestBudget(loop.time() + self.settings.api_update_timeout_seconds)
        token = _budget.set(budget)
        try:
            await self.app(scope, receive, send)
        finally:
            _budget.reset(token)
