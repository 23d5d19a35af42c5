"""The worker's /metrics (caseloop's, the domain gauges and the Temporal SDK's) and /healthz,
served by ``worker.run`` itself on WORKER_METRICS_PORT."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import ScheduleActionStartWorkflow
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

import worker
from api.app import create_app
from schedules import NIGHTLY
from settings import Settings
from tests.observability.metrics import Scrape, assert_documented_are_served, scrape
from tests.support import Actor, case_body, free_socket


def _free_port() -> int:
    with free_socket() as sock:
        return int(sock.getsockname()[1])


async def _remove_schedules(dev_env: WorkflowEnvironment, task_queue: str) -> None:
    """The schedules ``worker.run`` created for ``task_queue`` on the shared dev server."""
    for job in NIGHTLY:
        handle = dev_env.client.get_schedule_handle(job.name)
        try:
            action = (await handle.describe()).schedule.action
            if isinstance(action, ScheduleActionStartWorkflow) and action.task_queue == task_queue:
                await handle.delete()
        except RPCError:
            pass


@pytest.fixture
async def worker_url(
    dev_env: WorkflowEnvironment, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[str]:
    """``worker.run`` (the process's own entry point) on the test's dev server and task queue,
    its metrics on a free port; yields their base URL."""
    port = _free_port()
    own = settings.model_copy(
        update={
            "temporal_address": dev_env.client.service_client.config.target_host,
            "temporal_namespace": dev_env.client.namespace,
            "worker_metrics_port": port,
            "metrics_collect_seconds": 0.2,
        }
    )
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(own, stop))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        await running
        await _remove_schedules(dev_env, settings.temporal_task_queue)


async def _healthy(url: str, seconds: float = 30) -> dict[str, object]:
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient() as client:
        while True:
            try:
                answer = await client.get(f"{url}/healthz", timeout=5)
                if answer.status_code == 200:
                    body: dict[str, object] = answer.json()
                    return body
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the worker never reported healthy"
            await asyncio.sleep(0.2)


async def _eventually(url: str, ready: object, seconds: float = 30) -> Scrape:
    deadline = time.monotonic() + seconds
    while True:
        served = await scrape(f"{url}/metrics")
        if ready(served):  # type: ignore[operator]
            return served
        assert time.monotonic() < deadline, served.text[-5000:]
        await asyncio.sleep(0.2)


async def test_the_worker_serves_every_documented_metric_and_reports_itself_polling(
    worker_url: str, dev_env: WorkflowEnvironment, settings: Settings, creditor: Actor
) -> None:
    health = await _healthy(worker_url)
    assert health["polling"] is True
    assert health["taskQueue"] == settings.temporal_task_queue
    last_poll = health["lastPoll"]
    assert isinstance(last_poll, dict) and all(last_poll.values())

    # A case, projected by this worker (the only one on the task queue): its activities and
    # its open task show.
    app = create_app(settings, temporal=dev_env.client)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as api,
    ):
        created = await api.post("/api/cases", json=case_body(), headers=creditor.headers)
        assert created.status_code == 201, created.text

    def projected(served: Scrape) -> bool:
        return (
            served.value("caseloop_activity_duration_seconds_count", activity="project_case") >= 1
            and served.value("caseloop_open_tasks") >= 1
            and served.value("temporal_workflow_task_execution_latency_count") >= 1
        )

    served = await _eventually(worker_url, projected)
    assert_documented_are_served(served, "worker")
    assert_documented_are_served(served, "worker (SDK)")
    # Counted on the whole (shared) dev server: a number, whatever other tests left blocked.
    assert len(served.samples("caseloop_projections_blocked")) == 1
    assert served.value("caseloop_webhook_deliveries_due") == 0
    assert served.value("caseloop_collector_last_success") > 0
