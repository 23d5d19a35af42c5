"""The metrics endpoint: ``GET /metrics`` (and the worker's ``GET /healthz``) on a port of its
own (API_METRICS_PORT, WORKER_METRICS_PORT) on METRICS_HOST, in a thread of the process.

It is never the public API port: the metrics name routes, task counts and backlogs, and a
scraper holds no API key; keep the port reachable by Prometheus only (docs/operations.md,
"Metrics"). A scrape reads memory only: the domain gauges are computed by the collector on its
own schedule (``observability.collector``).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

logger = logging.getLogger(__name__)

# What a health check answers: an HTTP status and a JSON body.
HealthReport = tuple[int, dict[str, Any]]


class MetricsServer:
    """Serves ``registry`` (plus ``extra()``'s exposition text, e.g. the Temporal SDK's) at
    ``/metrics`` and, with ``health``, its report at ``/healthz``. ``port`` 0: a free one."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        registry: CollectorRegistry = REGISTRY,
        extra: Callable[[], bytes] | None = None,
        health: Callable[[], HealthReport] | None = None,
    ) -> None:
        self._registry = registry
        self._extra = extra
        self._health = health
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._answer(200, CONTENT_TYPE_LATEST, outer.exposition())
                elif path == "/healthz" and outer._health is not None:
                    status, body = outer._health()
                    self._answer(status, "application/json", json.dumps(body).encode())
                else:
                    self._answer(404, "text/plain; charset=utf-8", b"not found\n")

            def _answer(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # scrapes every few seconds: not worth a log line each

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def exposition(self) -> bytes:
        text = generate_latest(self._registry)
        if self._extra is not None:
            try:
                text += self._extra()
            except Exception as error:  # the SDK's metrics missing must not hide caseloop's
                logger.warning("metrics: the extra metrics failed (%s)", type(error).__name__)
        return text

    def start(self) -> MetricsServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics", daemon=True
        )
        self._thread.start()
        logger.info("metrics on http://%s:%d/metrics", *self._server.server_address[:2])
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
