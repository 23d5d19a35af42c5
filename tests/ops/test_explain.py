"""`caseloop case explain` and `GET /api/ops/cases/{id}/explain` say, in plain words, what a
case waits on: its open tasks with their deadlines and who owes each, timers, recent events,
projection lag and what fails."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

import workflows.case
from settings import Settings
from store.models import Case
from tests.api.test_faults import BreakableProjection, _api_with, budget_settings
from tests.api.test_status import in_collection
from tests.api.test_tasks import eventually
from tests.ops.test_reproject import caseloop, cli_env
from tests.support import Actor, case_body, eventually_listed

__all__ = ["budget_settings"]  # a fixture of tests/api/test_faults.py, used here


async def overdue_case(
    api: httpx.AsyncClient, creditor: Actor, partner: Actor, ops: Actor
) -> tuple[str, dict[str, Any]]:
    """A case in collection with a Generic task of the creditor's that is overdue."""
    case = await in_collection(api, creditor, partner, ops)
    case_id = case["caseId"]
    deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    created = await api.post(
        "/api/tasks",
        json={
            "caseId": case_id,
            "title": "Send the signed invoice",
            "deadline": deadline.isoformat(),
        },
        headers=creditor.headers,
    )
    assert created.status_code == 201, created.text
    task = created.json()

    async def overdue() -> dict[str, Any] | None:
        got = await api.get(f"/api/tasks/{task['id']}", headers=creditor.headers)
        return dict(got.json()) if got.json().get("overdue") else None

    return case_id, await eventually(overdue, seconds=15)


async def test_explain_names_the_overdue_task_its_deadline_and_who_owes_it(
    api: httpx.AsyncClient,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    settings: Settings,
    dev_env: WorkflowEnvironment,
) -> None:
    case_id, task = await overdue_case(api, creditor, partner, ops)

    result = await caseloop(cli_env(settings, dev_env), "case", "explain", case_id)

    assert result.exit_code == 0, result.output
    text = result.output
    deadline = dt.datetime.fromisoformat(task["deadline"]).astimezone(dt.UTC)
    line = next(line for line in text.splitlines() if "Send the signed invoice" in line)
    assert f"owed by {creditor.principal.org_name}" in line
    assert f"due {deadline:%Y-%m-%d %H:%M} UTC" in line
    assert "OVERDUE since" in line
    assert "Generic" in line and task["id"] in line
    assert "In Collection" in text.splitlines()[0]
    assert "Projection: up to date" in text
    assert "Failing: nothing" in text
    assert "timer fired: Generic deadline" in text, "the timers' summaries, in words"
    pending = text.split("Pending timers:", 1)[1].split("\n\n", 1)[0]
    # The overdue task's breach e-mail (its ladder's next step, at the first working hour after
    # the deadline: domain/escalation.py) is the case's next timer.
    assert "Generic breach" in pending, "the next timer is pending, in words"
    # What it waits on: the creditor's overdue task, the partner working it, a timer.
    assert "Waiting on: Creditor, Partner, Timer, next step " in text
    org = creditor.principal.org_name
    assert f"  - Waiting for {org} (creditor) on Generic, overdue since " in text
    assert "  - Waiting for partner to collect the debt" in text
    assert "Nordisk" not in text and "jens@" not in text, "no debtor data"


async def test_explain_endpoint_answers_ops_with_the_same_explanation_and_404_to_others(
    api: httpx.AsyncClient,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    case_id, task = await overdue_case(api, creditor, partner, ops)
    path = f"/api/ops/cases/{case_id}/explain"

    got = await api.get(path, headers=ops.headers)

    assert got.status_code == 200, got.text
    body = got.json()
    [explained] = [t for t in body["openTasks"] if t["id"] == task["id"]]
    assert explained["owedBy"] == creditor.principal.org_name
    assert explained["owedById"] == str(creditor.org_id)
    assert dt.datetime.fromisoformat(explained["deadline"]) == dt.datetime.fromisoformat(
        task["deadline"]
    )
    assert explained["overdueSince"] is not None
    assert (body["status"], body["stateFrom"], body["projectionLag"]) == (
        "In Collection",
        "workflow",
        0,
    )
    assert body["recentEvents"] and body["failing"] == []
    for outsider in (creditor, partner):  # even the case's own parties
        denied = await api.get(path, headers=outsider.headers)
        assert denied.status_code == 404
        assert denied.headers["content-type"].startswith("application/problem+json")
    unknown = await api.get(f"/api/ops/cases/{uuid.uuid4()}/explain", headers=ops.headers)
    assert unknown.status_code == 404


async def test_explain_shows_projection_lag_and_a_failing_workflow_task(
    api: httpx.AsyncClient,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    case = await in_collection(api, creditor, partner, ops)
    case_id = uuid.UUID(case["caseId"])
    async with sessions() as session, session.begin():
        await session.execute(
            update(Case).where(Case.id == case_id).values(version=Case.version - 3)
        )

    body = (await api.get(f"/api/ops/cases/{case_id}/explain", headers=ops.headers)).json()

    assert body["projectionLag"] == 3
    assert body["workflowVersion"] == body["readModelVersion"] + 3


async def test_explain_says_a_blocked_projection_fails_and_why(
    dev_env: WorkflowEnvironment,
    budget_settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    ops: Actor,
) -> None:
    projection = BreakableProjection(sessions)
    async for api in _api_with(dev_env, budget_settings, sessions, projection):
        created = await api.post("/api/cases", json=case_body(), headers=creditor.headers)
        assert created.status_code == 201, created.text
        case_id = created.json()["caseId"]
        workflow_id = f"case-{case_id}"
        projection.broken = True
        busy = await api.post(
            "/api/tasks", json={"caseId": case_id, "title": "x"}, headers=creditor.headers
        )
        assert busy.status_code == 503
        await eventually_listed(
            dev_env, f'ProjectionBlocked = true AND WorkflowId = "{workflow_id}"', seconds=15
        )

        body = (await api.get(f"/api/ops/cases/{case_id}/explain", headers=ops.headers)).json()

        whats = [failing["what"] for failing in body["failing"]]
        assert any(what.startswith("projection blocked") for what in whats), whats
        failed = next(f for f in body["failing"] if "local activity project_case" in f["what"])
        assert "the read model refused the write" in failed["lastFailure"]
        assert "OverflowError" in failed["lastFailure"]
        assert body["projectionLag"] >= 1
        projection.broken = False
        await dev_env.client.get_workflow_handle(workflow_id).signal("retry_projection")


async def test_explain_of_an_unknown_case_exits_2_and_says_so(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, dev_env: WorkflowEnvironment
) -> None:
    unknown = str(uuid.uuid4())

    result = await caseloop(cli_env(settings, dev_env), "case", "explain", unknown)

    assert result.exit_code == 2
    assert f"no case {unknown}" in result.output


async def test_explain_says_a_workflow_task_fails_and_why(
    api: httpx.AsyncClient,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    settings: Settings,
    dev_env: WorkflowEnvironment,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    case_id = (await in_collection(api, creditor, partner, ops))["caseId"]

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("deliberately broken workflow code (test)")

    # The worker's workflow code breaks: the case's next workflow task raises, and keeps
    # raising on every retry, as a bad deploy would.
    monkeypatch.setattr(workflows.case, "waiting_of", broken)
    change = asyncio.create_task(
        api.post("/api/tasks", json={"caseId": case_id, "title": "x"}, headers=creditor.headers)
    )
    path = f"/api/ops/cases/{case_id}/explain"

    async def failing() -> dict[str, Any] | None:
        body = dict((await api.get(path, headers=ops.headers)).json())
        retrying = [f for f in body["failing"] if f["what"].startswith("workflow task (retrying")]
        return body if retrying and (retrying[0]["attempts"] or 0) > 1 else None

    try:
        body = await eventually(failing, seconds=40)
        result = await caseloop(cli_env(settings, dev_env), "case", "explain", case_id)
    finally:
        monkeypatch.undo()
        answered = await change
    [retrying] = [f for f in body["failing"] if f["what"].startswith("workflow task (retrying")]
    assert "deliberately broken workflow code (test)" in retrying["lastFailure"]
    assert any("workflow task failed" in e["what"] for e in body["recentEvents"])
    assert result.exit_code == 0, result.output
    failing_lines = result.output.split("Failing:", 1)[1].split("\n\n", 1)[0]
    assert "workflow task (retrying: the worker fails it) (attempt " in failing_lines
    assert "RuntimeError" in failing_lines or "deliberately broken" in failing_lines
    assert answered.status_code in (201, 503), answered.text  # answered, not left hanging
