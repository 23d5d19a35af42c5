"""Serving the API: uvicorn (h11), with even the requests it cannot parse answered as problem+json.

``api.guard`` refuses headers past ``MAX_HEADER_BYTES`` with 431 ``headers_too_large``. For that
answer to come from the app, uvicorn must read such heads first: it reads up to
``MAX_HEAD_BYTES``. A head larger still, or bytes that are not HTTP/1.1 at all, never reach the
app; uvicorn answers them itself, and ``ProblemH11Protocol`` makes that answer problem+json too
(431 ``headers_too_large``, or 400 ``malformed_request``) instead of uvicorn's plain text.
"""

from __future__ import annotations

import json
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from api.errors import PROBLEM_JSON, Problem
from api.guard import MAX_HEADER_BYTES, headers_too_large
from observability import logs
from observability.server import MetricsServer
from settings import get_settings

MAX_HEAD_BYTES = 16 * MAX_HEADER_BYTES
H11_DEFAULT_HEAD_BYTES = 16 * 1024  # h11's own limit, when a server is run without ours


def malformed_request() -> Problem:
    return Problem(400, "malformed_request", "The request is not valid HTTP/1.1.")


class ProblemH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, answering an unparseable request with a problem."""

    def send_400_response(self, msg: str) -> None:
        received, _ = self.conn.trailing_data
        limit = self.config.h11_max_incomplete_event_size or H11_DEFAULT_HEAD_BYTES
        problem = headers_too_large(limit) if len(received) > limit else malformed_request()
        body = json.dumps(problem.body()).encode()
        headers = [
            (b"content-type", PROBLEM_JSON.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        for event in (
            h11.Response(status_code=problem.status, headers=headers),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event) or b"")
        self.transport.close()


def uvicorn_options() -> dict[str, Any]:
    """The options every caseloop API server runs with (``caseloop api``, ``caseloop dev``).

    The event loop is uvloop's: the API's event loop wakes for every socket read and write and
    for every answer from the database driver's thread and the Temporal client, and asyncio's
    own loop (pure Python around ``select``) spent about a quarter of the API process's CPU on
    it (docs/performance.md, "The API's own work per request, issue 10's fourth session")."""
    return {
        "http": ProblemH11Protocol,
        "h11_max_incomplete_event_size": MAX_HEAD_BYTES,
        "loop": "uvloop",
    }


def serve() -> None:
    """Serve the API on API_HOST:API_PORT, and its metrics on METRICS_HOST:API_METRICS_PORT."""
    settings = get_settings()
    if settings.api_metrics_port:
        # A port of its own, not a route of the app: the public port never shows metrics, and
        # a scraper needs no API key (docs/operations.md, "Metrics").
        MetricsServer(settings.metrics_host, settings.api_metrics_port).start()
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        # LOG_FORMAT / LOG_LEVEL for uvicorn's loggers and caseloop's alike.
        log_config=logs.logging_config(settings, "api"),
        **uvicorn_options(),
    )


if __name__ == "__main__":
    serve()
