"""Liveness and readiness of the API, and the worker's health report."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

import cli
from api.app import create_app
from observability.server import MetricsServer
from observability.worker import STALE_AFTER, WorkerHealth
from settings import Settings
from store.db import create_engine, session_factory


async def test_liveness_and_readiness_answer_200_while_all_is_up(api: httpx.AsyncClient) -> None:
    live = await api.get("/api/health/live")
    assert (live.status_code, live.json()) == (200, {"status": "ok"})
    ready = await api.get("/api/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "temporal": "ok", "database": "ok"}
    assert (await api.get("/api/health")).json() == ready.json()  # decision 0003's, unchanged


async def test_readiness_fails_while_the_database_is_down_and_liveness_still_answers(
    settings: Settings, dev_env: WorkflowEnvironment
) -> None:
    app = create_app(settings, temporal=dev_env.client)
    async with app.router.lifespan_context(app):
        # A database that refuses every connection (nothing listens on port 1).
        down = create_engine("postgresql://caseloop@127.0.0.1:1/none")
        app.state.sessions = session_factory(down)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            ready = await client.get("/api/health/ready")
            assert ready.status_code == 503
            assert ready.json() == {
                "status": "unavailable",
                "temporal": "ok",
                "database": "unavailable",
            }
            assert (await client.get("/api/health")).status_code == 503
            live = await client.get("/api/health/live")
            assert (live.status_code, live.json()) == (200, {"status": "ok"})
        await down.dispose()


async def test_the_health_checks_need_no_key_and_name_no_data(api: httpx.AsyncClient) -> None:
    for path in ("/api/health/live", "/api/health/ready"):
        answer = await api.get(path)
        assert answer.status_code == 200, path
        assert set(answer.json()) <= {"status", "temporal", "database"}


NOW = dt.datetime(2026, 12, 2, 6, 0, tzinfo=dt.UTC)


def _health(**last_poll: dt.datetime | None) -> WorkerHealth:
    health = WorkerHealth(client=None, task_queue="caseloop", identity="1@host")  # type: ignore[arg-type]
    health.running = True
    health.last_poll.update(last_poll)
    return health


def test_a_worker_that_polled_both_queues_lately_is_healthy() -> None:
    status, body = _health(workflow=NOW, activity=NOW - STALE_AFTER).report(NOW)
    assert status == 200
    assert (body["status"], body["polling"]) == ("ok", True)
    assert body["lastPoll"] == {
        "workflow": NOW.isoformat(),
        "activity": (NOW - STALE_AFTER).isoformat(),
    }


@pytest.mark.parametrize(
    ("workflow", "activity", "running"),
    [
        (NOW, NOW - STALE_AFTER - dt.timedelta(seconds=1), True),  # one queue's poll is stale
        (None, NOW, True),  # never polled the workflow queue
        (NOW, NOW, False),  # stopping
    ],
)
def test_a_worker_that_does_not_poll_both_queues_is_unhealthy(
    workflow: dt.datetime | None, activity: dt.datetime | None, running: bool
) -> None:
    health = _health(workflow=workflow, activity=activity)
    health.running = running
    status, body = health.report(NOW)
    assert status == 503
    assert (body["status"], body["polling"]) == ("unavailable", False)


def test_caseloop_worker_health_exits_0_when_healthy_and_1_when_not() -> None:
    health = _health(workflow=NOW, activity=NOW)
    clock = {"now": NOW}
    server = MetricsServer("127.0.0.1", 0, health=lambda: health.report(clock["now"])).start()
    url = f"http://127.0.0.1:{server.port}/healthz"
    try:
        ok = CliRunner().invoke(cli.app, ["worker", "health", "--url", url])
        assert ok.exit_code == 0, ok.output
        assert ok.output.startswith("ok: task queue 'caseloop'")
        clock["now"] = NOW + STALE_AFTER + dt.timedelta(minutes=1)
        stale = CliRunner().invoke(cli.app, ["worker", "health", "--url", url])
        assert stale.exit_code == 1
        assert stale.output.startswith("unavailable")
    finally:
        server.stop()
    gone = CliRunner().invoke(cli.app, ["worker", "health", "--url", url])
    assert gone.exit_code == 1
    assert "does not answer" in gone.output
