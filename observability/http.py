"""The API's request metrics: an ASGI middleware, outermost, labelling each request by its
route template (``/api/cases/{case_id}``), never its raw path (ids would make a series each).

A request no route matched (a 404, or one the guard answered before routing: 401, 413) is
labelled ``UNROUTED``; a method outside the standard ones is ``other``.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from observability.metrics import HTTP_DURATION, HTTP_REQUESTS

UNROUTED = "unrouted"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_of(scope: Scope) -> str:
    """The template of the route that handled the request (the router sets it in ``scope``)."""
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return UNROUTED
    # A mounted app (the portal's static files) answers below its mount point's template.
    return path


class RequestMetrics:
    """Counts and times every HTTP request: ``caseloop_http_requests_total`` and
    ``caseloop_http_request_duration_seconds``. Two clock reads and two in-memory updates
    (``bench/metrics_overhead.py``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # unless the app starts a response

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            method = scope["method"] if scope["method"] in METHODS else "other"
            route = route_of(scope)
            HTTP_REQUESTS.inc(method, route, str(status))
            HTTP_DURATION.observe(time.perf_counter() - start, method, route)
