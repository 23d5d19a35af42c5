"""Faults answer retryable errors within the request's budget, and nothing accepted is lost:
a projection that can never be written, a stopped worker, an unreachable database."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

import store.cases
from activities.projection import ProjectionActivities
from api.app import create_app
from domain import search_attributes as sa
from domain.cases import CaseProjection
from domain.ids import case_workflow_id
from domain.tasks import ProjectionResult
from domain.update_ids import client_update_id
from settings import Settings
from store.db import create_engine, session_factory
from tests.support import TEST_DATA_CONVERTER, Actor, bundled_binary, case_body, eventually_listed
from worker import build_worker

BUDGET = 4.0  # API_UPDATE_TIMEOUT_SECONDS in these tests


class BreakableProjection(ProjectionActivities):
    """The real case projection, which can be made to meet a value the database cannot store
    (as a deadline in year 9999 once did), through the real failure handling."""

    broken = False

    @activity.defn(name="project_case")
    async def project_case(self, projection: CaseProjection) -> ProjectionResult:
        if self.broken:
            async with self._write():
                raise OverflowError("date value out of range")
        return await super().project_case(projection)


@pytest.fixture
def budget_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"api_update_timeout_seconds": BUDGET})


async def _client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://caseloop.test") as c:
            yield c


async def _api_with(
    env: WorkflowEnvironment,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    projection: ProjectionActivities,
) -> AsyncIterator[httpx.AsyncClient]:
    """The API with a worker whose case projection is ``projection``'s."""
    worker = build_worker(
        env.client,
        task_queue=settings.temporal_task_queue,
        sessions=sessions,
        replace_activities=[projection.project_case],
    )
    async with worker:
        async for api in _client(create_app(settings, temporal=env.client)):
            yield api


async def _timed(request: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await request
    return response, time.monotonic() - started


def _generic(case_id: str, title: str) -> dict[str, str]:
    return {"caseId": case_id, "title": title}


async def _updates_with_id(env: WorkflowEnvironment, case_id: str, update_id: str) -> int:
    history = await env.client.get_workflow_handle(
        case_workflow_id(uuid.UUID(case_id))
    ).fetch_history()
    return sum(
        1
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
        and event.workflow_execution_update_accepted_event_attributes.accepted_request.meta.update_id
        == update_id
    )


async def test_a_projection_that_can_never_be_written_blocks_the_case_visibly_and_answers_callers(
    dev_env: WorkflowEnvironment,
    budget_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
) -> None:
    projection = BreakableProjection(sessions)
    async for api in _api_with(dev_env, budget_settings, sessions, projection):
        created = await api.post("/api/cases", json=case_body(), headers=creditor.headers)
        assert created.status_code == 201, created.text
        case_id = created.json()["caseId"]
        workflow_id = case_workflow_id(uuid.UUID(case_id))

        projection.broken = True
        first_key = {**creditor.headers, "Idempotency-Key": "first"}
        busy, took = await _timed(
            api.post("/api/tasks", json=_generic(case_id, "first"), headers=first_key)
        )
        # The caller is answered within the budget, not left hanging.
        assert busy.status_code == 503, busy.text
        assert busy.json()["code"] == "workflow_busy"
        assert busy.headers["Retry-After"]
        assert took < BUDGET + 2

        # Ops see it: a search attribute, and the current details say what to do.
        assert workflow_id in await eventually_listed(
            dev_env, f'ProjectionBlocked = true AND WorkflowId = "{workflow_id}"', seconds=15
        )
        metadata = await dev_env.client.get_workflow_handle(workflow_id).query(
            "__temporal_workflow_metadata"
        )
        assert "Projection blocked" in metadata.current_details
        assert "retry_projection" in metadata.current_details

        # Every later change is refused at once, with nothing changed.
        refused, took = await _timed(
            api.post("/api/tasks", json=_generic(case_id, "second"), headers=creditor.headers)
        )
        assert refused.status_code == 503, refused.text
        assert refused.json()["code"] == "projection_blocked"
        assert refused.headers["Retry-After"]
        assert took < 2

        # Repaired: the change that was waiting is written, and a retry with the same key
        # answers it, applied once.
        projection.broken = False
        await dev_env.client.get_workflow_handle(workflow_id).signal("retry_projection")
        for _ in range(50):
            retried = await api.post(
                "/api/tasks", json=_generic(case_id, "first"), headers=first_key
            )
            if retried.status_code != 503:
                break
            await asyncio.sleep(0.2)
        assert retried.status_code == 201, retried.text
        tasks = (await api.get(f"/api/cases/{case_id}/tasks", headers=creditor.headers)).json()
        assert [t["title"] for t in tasks if t["type"] == "Generic"] == ["first"]
        assert (
            await _updates_with_id(dev_env, case_id, client_update_id(creditor.org_id, "first"))
            == 1
        )
        assert workflow_id in await eventually_listed(
            dev_env, f'ProjectionBlocked = false AND WorkflowId = "{workflow_id}"', seconds=15
        )
        again = await api.post(
            "/api/tasks", json=_generic(case_id, "second"), headers=creditor.headers
        )
        assert again.status_code == 201, again.text


class StallingProjection(ProjectionActivities):
    """The real case projection, whose first attempt can be made to hang, as one does on a
    worker killed in the middle of it."""

    stall = False

    @activity.defn(name="project_case")
    async def project_case(self, projection: CaseProjection) -> ProjectionResult:
        if self.stall and activity.info().attempt == 1:
            await asyncio.sleep(120)
        return await super().project_case(projection)


async def test_a_lost_projection_answers_workflow_busy_within_the_budget_and_is_retried_in_seconds(
    dev_env: WorkflowEnvironment,
    budget_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
) -> None:
    projection = StallingProjection(sessions)
    async for api in _api_with(dev_env, budget_settings, sessions, projection):
        created = await api.post("/api/cases", json=case_body(), headers=creditor.headers)
        assert created.status_code == 201, created.text
        case_id = created.json()["caseId"]
        keyed = {**creditor.headers, "Idempotency-Key": "lost-projection"}
        correction = {"claimDescription": "Corrected while a projection was lost."}

        projection.stall = True
        sent = time.monotonic()
        busy, took = await _timed(
            api.patch(f"/api/cases/{case_id}", json=correction, headers=keyed)
        )
        # The whole request is bounded, not each of the RPCs it makes.
        assert busy.status_code == 503, busy.text
        assert busy.json()["code"] == "workflow_busy"
        assert busy.headers["Retry-After"]
        assert BUDGET - 0.5 < took < BUDGET + 2

        # Temporal gives the lost attempt up after seconds, not half a minute, and a retry
        # with the same key answers the change, applied once.
        while True:
            retried = await api.patch(f"/api/cases/{case_id}", json=correction, headers=keyed)
            if retried.status_code != 503 or time.monotonic() - sent > 30:
                break
        assert retried.status_code == 200, retried.text
        assert time.monotonic() - sent < 12
        assert retried.json()["claimDescription"] == correction["claimDescription"]
        assert (
            await _updates_with_id(
                dev_env, case_id, client_update_id(creditor.org_id, "lost-projection")
            )
            == 1
        )


async def test_with_the_database_unreachable_reads_and_writes_answer_503_with_retry_after(
    creditor: Actor, settings: Settings
) -> None:
    unreachable = create_engine("postgresql://caseloop@127.0.0.1:9/none")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        app.state.sessions = session_factory(unreachable)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as down:
            for response in (
                await down.get("/api/cases", headers=creditor.headers),
                await down.get(f"/api/cases/{uuid.uuid4()}", headers=creditor.headers),
                await down.post("/api/cases", json=case_body(), headers=creditor.headers),
            ):
                assert response.status_code == 503, response.text
                assert response.headers["content-type"] == "application/problem+json"
                assert response.json()["code"] == "database_unavailable"
                assert response.json()["applied"] is False
                assert response.headers["Retry-After"]
    await unreachable.dispose()


async def test_a_change_applied_before_the_database_failed_says_so_and_a_retry_returns_it(
    api: httpx.AsyncClient,
    creditor: Actor,
    dev_env: WorkflowEnvironment,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    created = await api.post("/api/cases", json=case_body(), headers=creditor.headers)
    case_id = created.json()["caseId"]
    read_back = store.cases.get_case

    async def database_gone(**kwargs: Any) -> Any:
        raise OperationalError("SELECT", {}, ConnectionRefusedError("connection refused"))

    # The workflow applies the correction; reading the answer back then fails.
    monkeypatch.setattr(store.cases, "get_case", database_gone)
    keyed = {**creditor.headers, "Idempotency-Key": "read-back"}
    correction = {"claimDescription": "Corrected just before the database went away."}
    failed = await api.patch(f"/api/cases/{case_id}", json=correction, headers=keyed)
    assert failed.status_code == 503, failed.text
    assert failed.json()["code"] == "database_unavailable"
    assert failed.json()["applied"] is True
    assert failed.headers["Retry-After"]

    monkeypatch.setattr(store.cases, "get_case", read_back)
    retried = await api.patch(f"/api/cases/{case_id}", json=correction, headers=keyed)
    assert retried.status_code == 200, retried.text
    assert retried.json()["claimDescription"] == correction["claimDescription"]
    assert (
        await _updates_with_id(dev_env, case_id, client_update_id(creditor.org_id, "read-back"))
        == 1
    )


async def test_when_temporal_stops_in_flight_and_new_requests_fail_fast_with_503(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=bundled_binary("temporal"),
        data_converter=TEST_DATA_CONVERTER,
        search_attributes=sa.ALL,
        dev_server_log_level="error",
    )
    own = settings.model_copy(
        update={"temporal_address": env.client.service_client.config.target_host}
    )
    app = create_app(own)  # the API's own client, as in production
    stopped = False
    try:
        async for api in _client(app):
            async with build_worker(
                env.client, task_queue=own.temporal_task_queue, sessions=sessions
            ):
                created = await api.post("/api/cases", json=case_body(), headers=creditor.headers)
                assert created.status_code == 201, created.text
            case_id = created.json()["caseId"]
            # No worker: this request waits on Temporal when Temporal goes away.
            in_flight = asyncio.create_task(
                _timed(
                    api.patch(
                        f"/api/cases/{case_id}",
                        json={"claimDescription": "Sent as Temporal stopped."},
                        headers=creditor.headers,
                    )
                )
            )
            await asyncio.sleep(1)
            await env.shutdown()
            stopped = True
            for response, took in [
                await in_flight,
                await _timed(
                    api.post("/api/tasks", json=_generic(case_id, "t"), headers=creditor.headers)
                ),
            ]:
                assert response.status_code == 503, response.text
                assert response.json()["code"] == "temporal_unavailable"
                assert response.headers["Retry-After"]
                assert took < 4, took
    finally:
        if not stopped:
            await env.shutdown()
