"""The orphan check (issue 14, item 4) on a real dev server: an open case that waits on nobody,
and one whose workflow ended while it is open, are reported (the check's result, its log lines,
``GET /api/ops/orphans``, ``caseloop case explain``); ordinary cases are not."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.common import WorkflowIDReusePolicy
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

import workflows.case
from activities.orphans import OrphanActivities
from domain import search_attributes as sa
from domain.cases import CaseWorkflowInput
from domain.enums import OrgKind
from domain.ids import case_workflow_id
from domain.orphans import OrphanCheckInput, OrphanKind
from domain.tasks import TaskType
from tests.api.test_status import in_collection, move
from tests.api.test_tasks import eventually, new_case
from tests.support import Actor, eventually_listed, make_actor
from workflows.case import CaseWorkflow
from workflows.orphans import OrphanCheckWorkflow


async def waiting_on(dev_env: WorkflowEnvironment, case_id: str, expected: list[str]) -> None:
    handle = dev_env.client.get_workflow_handle(case_workflow_id(case_id))

    async def published() -> bool | None:
        got = (await handle.describe()).typed_search_attributes.get(sa.WAITING_ON)
        return True if got == expected else None

    await eventually(published, seconds=15)


async def paused_without_its_hold_task(
    api: httpx.AsyncClient,
    dev_env: WorkflowEnvironment,
    task_queue: str,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> str:
    """A case ops paused (waiting for the creditor), whose run then lost the hold's task: as a
    state an older release carried over continue-as-new would. Nothing will move it."""
    case_id = (await in_collection(api, creditor, partner, ops))["caseId"]
    paused = await move(
        api, ops, case_id, status="On Hold", subStatus="Paused", waitingFor="Creditor"
    )
    assert paused.status_code == 200, paused.text
    workflow_id = case_workflow_id(case_id)
    handle = dev_env.client.get_workflow_handle(workflow_id)
    state = await handle.query(CaseWorkflow.get_state)
    held = [t for t in state.book.tasks if t.type is TaskType.CLIENT_INPUT_REQUIRED]
    assert held, "the ops action raised the hold's task"
    state.book.tasks = [t for t in state.book.tasks if t not in held]
    attributes = (await handle.describe()).typed_search_attributes
    await handle.terminate("test: the run continues without its hold task")
    await dev_env.client.start_workflow(
        CaseWorkflow.run,
        CaseWorkflowInput(state=state),
        id=workflow_id,
        task_queue=task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        search_attributes=attributes,
    )
    return str(case_id)


async def test_the_check_reports_the_case_that_waits_on_nobody_and_the_ended_one_only(
    api: httpx.AsyncClient,
    dev_env: WorkflowEnvironment,
    worker: Worker,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Ordinary cases: one waiting on its creditor's contract, one in collection.
    unsigned = await make_actor(sessions, OrgKind.CREDITOR)
    contract = (await new_case(api, unsigned))["caseId"]
    collecting = (await in_collection(api, creditor, partner, ops))["caseId"]
    orphan = await paused_without_its_hold_task(api, dev_env, task_queue, creditor, partner, ops)
    # And one whose workflow was terminated while the case is open.
    ended = (await in_collection(api, creditor, partner, ops))["caseId"]
    await dev_env.client.get_workflow_handle(case_workflow_id(ended)).terminate("test: by mistake")
    await waiting_on(dev_env, contract, ["Creditor"])
    await waiting_on(dev_env, collecting, ["Partner", "Timer"])
    await waiting_on(dev_env, orphan, ["Nobody"])
    assert await eventually_listed(
        dev_env,
        f"WorkflowId = '{case_workflow_id(ended)}' AND ExecutionStatus = 'Terminated'",
        seconds=15,
    )

    with caplog.at_level(logging.WARNING, logger="activities.orphans"):
        result = await dev_env.client.execute_workflow(
            OrphanCheckWorkflow.run,
            OrphanCheckInput(),
            id=f"orphan-check-{uuid.uuid4()}",
            task_queue=task_queue,
        )

    ours = {contract, collecting, orphan, ended}
    found = {str(f.case_id): f for f in result.findings if str(f.case_id) in ours}
    assert {case: f.kind for case, f in found.items()} == {
        orphan: OrphanKind.WAITING_ON_NOBODY,
        ended: OrphanKind.ENDED,
    }
    assert found[orphan].workflow_id == case_workflow_id(orphan)
    assert found[orphan].status is not None and found[orphan].status.value == "On Hold"
    assert found[ended].execution_status == "TERMINATED"
    assert result.counts[OrphanKind.WAITING_ON_NOBODY] >= 1
    logged = [r.getMessage() for r in caplog.records if r.name == "activities.orphans"]
    assert any(orphan in line and case_workflow_id(orphan) in line for line in logged), logged
    assert not any(collecting in line or contract in line for line in logged)
    assert not any("Jens" in line or "Nordisk" in line for line in logged), "no debtor data"

    # Ops read the run: the endpoint, and explain on the case.
    report = await api.get("/api/ops/orphans", headers=ops.headers)
    assert report.status_code == 200, report.text
    body: dict[str, Any] = report.json()
    listed = {f["caseId"]: f["kind"] for f in body["findings"] if f["caseId"] in ours}
    assert listed == {orphan: "waiting_on_nobody", ended: "ended"}
    assert body["counts"]["waiting_on_nobody"] == result.counts[OrphanKind.WAITING_ON_NOBODY]
    assert body["temporalUiQuery"].endswith("WaitingOn = 'Nobody'")
    for outsider in (creditor, partner):
        denied = await api.get("/api/ops/orphans", headers=outsider.headers)
        assert denied.status_code == 403
        assert denied.headers["content-type"].startswith("application/problem+json")
    explained = (await api.get(f"/api/ops/cases/{orphan}/explain", headers=ops.headers)).json()
    assert explained["waitingOn"] == ["Nobody"]
    assert any("Waiting on nobody" in line for line in explained["waiting"])
    metadata = await dev_env.client.get_workflow_handle(case_workflow_id(orphan)).query(
        "__temporal_workflow_metadata"
    )
    assert "**Waiting on nobody**" in metadata.current_details


async def test_the_current_details_name_the_parties_and_the_next_timer_in_words(
    api: httpx.AsyncClient,
    dev_env: WorkflowEnvironment,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    case = await in_collection(api, creditor, partner, ops)
    case_id = case["caseId"]
    posted = await api.post(
        f"/api/cases/{case_id}/chats",
        json={"message": "Could you send the signed invoice?"},
        headers=creditor.headers,
    )
    assert posted.status_code == 201, posted.text
    handle = dev_env.client.get_workflow_handle(case_workflow_id(case_id))

    async def details() -> str | None:
        text = (await handle.query("__temporal_workflow_metadata")).current_details
        return str(text) if "to reply in Invoice Chat" in text else None

    text = await eventually(details, seconds=15)

    partner_name = partner.principal.org_name
    creditor_name = creditor.principal.org_name
    assert f"creditor {creditor_name} · partner {partner_name}" in text
    line = next(line for line in text.splitlines() if "to reply in Invoice Chat" in line)
    assert line.startswith(
        f"- Waiting for {partner_name} (partner) to reply in Invoice Chat until "
    )
    place = partner.principal.timezone.rsplit("/", 1)[-1].replace("_", " ")
    assert line.endswith(f" 23:59 {place}"), line
    assert "- Waiting for partner to collect the debt" in text
    assert "- Next step: NewMessage " in text
    assert "Open tasks:\n- NewMessage due " in text, "what ops relied on stays"
    assert "Jens" not in text and "Nordisk" not in text, "no debtor data"


async def test_a_case_whose_next_timer_passed_without_moving_it_is_reported_stalled(
    api: httpx.AsyncClient,
    dev_env: WorkflowEnvironment,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    case_id = (await in_collection(api, creditor, partner, ops))["caseId"]
    ordinary = (await in_collection(api, creditor, partner, ops))["caseId"]
    deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)
    created = await api.post(
        "/api/tasks",
        json={"caseId": case_id, "title": "Call back", "deadline": deadline.isoformat()},
        headers=creditor.headers,
    )
    assert created.status_code == 201, created.text
    handle = dev_env.client.get_workflow_handle(case_workflow_id(case_id))
    next_step = (await handle.describe()).typed_search_attributes.get(sa.NEXT_STEP_AT)
    assert next_step is not None and next_step <= deadline + dt.timedelta(seconds=1)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("deliberately broken workflow code (test)")

    # The timer fires, but the workflow task it starts fails (a bad deploy): the case does not
    # move and its NextStepAt stays in the past.
    monkeypatch.setattr(workflows.case, "waiting_of", broken)
    await asyncio.sleep(max(0.0, (next_step - dt.datetime.now(dt.UTC)).total_seconds()) + 3)
    check = OrphanActivities(sessions, dev_env.client, stalled_after=dt.timedelta(seconds=1))
    try:
        result = await ActivityEnvironment().run(check.check_orphans, OrphanCheckInput())
    finally:
        monkeypatch.undo()

    found = {str(f.case_id): f for f in result.findings if str(f.case_id) in (case_id, ordinary)}
    assert list(found) == [case_id]
    assert found[case_id].kind is OrphanKind.STALLED
    assert found[case_id].next_step_at == next_step
    assert result.counts[OrphanKind.STALLED] >= 1
