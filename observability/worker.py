"""The worker's metrics and health.

- ``ActivityMetrics``: a worker interceptor timing every activity attempt (local ones too: the
  projections) and counting its failures, by activity name (two clock reads per attempt).
- ``sdk_runtime``: a Temporal runtime whose core exports the SDK's own metrics (``temporal_*``)
  on a loopback port of its own; ``sdk_metrics`` reads them so the worker serves them on its
  one endpoint (WORKER_METRICS_PORT) beside caseloop's: one scrape target per worker.
- ``WorkerHealth``: whether the worker runs and polls, from the server's view: every
  ``interval`` it asks Temporal (DescribeTaskQueue) when this worker's identity last polled
  the workflow and the activity task queue. ``/healthz`` answers 200 while both polls are
  fresher than ``STALE_AFTER``, else 503, with the times.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import socket
import urllib.request
from typing import Any

from prometheus_client import Gauge
from temporalio import activity
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from observability.metrics import ACTIVITY_DURATION, ACTIVITY_FAILURES
from observability.server import HealthReport

logger = logging.getLogger(__name__)

WORKER_POLLING = Gauge(
    "caseloop_worker_polling",
    "1 while Temporal saw this worker poll its workflow and activity task queues in the last "
    "2 minutes (its /healthz answers 200), else 0.",
)


def error_type(error: BaseException) -> str:
    """A failure's label: an ApplicationError's type (set in code), else the exception class."""
    if isinstance(error, ApplicationError) and error.type:
        return error.type
    return type(error).__name__


class _ActivityMetricsInbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        name = activity.info().activity_type
        start = asyncio.get_running_loop().time()
        try:
            return await super().execute_activity(input)
        except BaseException as error:
            ACTIVITY_FAILURES.inc(name, error_type(error))
            raise
        finally:
            ACTIVITY_DURATION.observe(asyncio.get_running_loop().time() - start, name)


class ActivityMetrics(Interceptor):
    """Worker interceptor: ``caseloop_activity_duration_seconds`` and
    ``caseloop_activity_failures_total`` for every activity the worker runs."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityMetricsInbound(super().intercept_activity(next))


def free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sdk_runtime(port: int) -> Runtime:
    """A runtime exporting the SDK's metrics on 127.0.0.1:``port`` (durations in seconds, as
    caseloop's; names as the SDK's metrics reference spells them, counters without
    ``_total``). The worker's client must be connected with it."""
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(bind_address=f"127.0.0.1:{port}", durations_as_seconds=True)
        )
    )


def sdk_metrics(port: int) -> bytes:
    """The SDK's exposition text, read from its loopback endpoint."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as answer:
        body: bytes = answer.read()
    return body


STALE_AFTER = dt.timedelta(minutes=2)  # a long poll is renewed at least every ~70 s
QUEUE_TYPES = {
    "workflow": TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    "activity": TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
}


class WorkerHealth:
    """The worker's health as ``/healthz`` and ``caseloop worker health`` report it."""

    def __init__(self, client: Client, task_queue: str, identity: str) -> None:
        self._client = client
        self._task_queue = task_queue
        self._identity = identity
        self.running = False
        self.last_poll: dict[str, dt.datetime | None] = dict.fromkeys(QUEUE_TYPES)
        self.checked_at: dt.datetime | None = None
        self.error: str | None = None

    async def check(self) -> None:
        """Ask Temporal when this worker last polled each task queue type."""
        try:
            for kind, queue_type in QUEUE_TYPES.items():
                answer = await self._client.workflow_service.describe_task_queue(
                    DescribeTaskQueueRequest(
                        namespace=self._client.namespace,
                        task_queue=TaskQueue(name=self._task_queue),
                        task_queue_type=queue_type,
                    ),
                    timeout=dt.timedelta(seconds=5),
                )
                for poller in answer.pollers:
                    if poller.identity == self._identity and poller.HasField("last_access_time"):
                        self.last_poll[kind] = poller.last_access_time.ToDatetime(dt.UTC)
            self.error = None
        except Exception as error:
            self.error = f"Temporal did not answer ({type(error).__name__})"
            logger.warning("health: %s", self.error)
        self.checked_at = dt.datetime.now(dt.UTC)
        WORKER_POLLING.set(1 if self.report()[0] == 200 else 0)

    async def watch(self, interval: float) -> None:
        """Check every ``interval`` seconds; every second until both polls are seen (so a
        starting worker reports healthy as soon as it polls)."""
        while True:
            await self.check()
            await asyncio.sleep(interval if self.report()[0] == 200 else min(interval, 1.0))

    def report(self, now: dt.datetime | None = None) -> HealthReport:
        now = now or dt.datetime.now(dt.UTC)
        fresh = {
            kind: at is not None and now - at <= STALE_AFTER for kind, at in self.last_poll.items()
        }
        polling = self.running and all(fresh.values())
        body: dict[str, Any] = {
            "status": "ok" if polling else "unavailable",
            "running": self.running,
            "polling": polling,
            "taskQueue": self._task_queue,
            "lastPoll": {
                kind: at.isoformat() if at is not None else None
                for kind, at in self.last_poll.items()
            },
            "checkedAt": self.checked_at.isoformat() if self.checked_at else None,
        }
        if self.error:
            body["error"] = self.error
        return (200 if polling else 503), body
