"""`caseloop case reproject` rebuilds a case's read-model rows from its workflow's history:
what was deleted or altered comes back, and an intact case stays exactly as it was."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType, ResetReapplyExcludeType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from cli import app
from domain.ids import creditor_workflow_id
from ops.reproject import reproject, reproject_case
from settings import Settings, get_settings
from store.models import (
    Case,
    CaseHistory,
    CaseInvitation,
    CasePaymentRow,
    ChatMessageRow,
    Organisation,
    TaskRow,
)
from tests.api.test_chat import post_chat
from tests.api.test_status import in_collection
from tests.api.test_tasks import eventually, new_case
from tests.support import TEST_PAYLOAD_KEYS, Actor

Rows = dict[str, list[tuple[Any, ...]]]
TABLES = (Case, CaseHistory, ChatMessageRow, TaskRow, CasePaymentRow, CaseInvitation)


async def case_rows(sessions: async_sessionmaker[AsyncSession], case_id: uuid.UUID) -> Rows:
    """Every read-model row of the case, every column, in a stable order."""
    rows: Rows = {}
    async with sessions() as session:
        for model in TABLES:
            table = model.__table__
            key = table.c.id if model is Case else table.c.case_id
            result = await session.execute(
                select(table).where(key == case_id).order_by(*table.primary_key.columns)
            )
            rows[table.name] = [tuple(row) for row in result]
    return rows


async def worked_case(
    api: httpx.AsyncClient, creditor: Actor, partner: Actor, ops: Actor
) -> uuid.UUID:
    """A case with history, chat messages in two threads and tasks."""
    case = await in_collection(api, creditor, partner, ops)
    case_id = case["caseId"]
    for actor, text in ((creditor, "Any news on the debtor?"), (partner, "Calling them today.")):
        assert (await post_chat(api, actor, case_id, text)).status_code == 201
    generic = await api.post(
        "/api/tasks",
        json={"caseId": case_id, "title": "Call the debtor"},
        headers=creditor.headers,
    )
    assert generic.status_code == 201, generic.text
    return uuid.UUID(case_id)


def cli_env(settings: Settings, dev_env: WorkflowEnvironment) -> dict[str, str]:
    return {
        "DATABASE_URL": settings.database_url,
        "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": dev_env.client.namespace,
        "PAYLOAD_KEYS": TEST_PAYLOAD_KEYS,
    }


async def caseloop(env: dict[str, str], *args: str) -> Any:
    """``caseloop ARGS`` through typer's runner, in a thread (the command runs its own event
    loop; the test's keeps serving the worker)."""

    def run() -> Any:
        get_settings.cache_clear()
        try:
            return CliRunner().invoke(app, list(args), env=env)
        finally:
            get_settings.cache_clear()

    return await asyncio.to_thread(run)


async def test_reproject_restores_deleted_and_altered_rows_of_a_case(
    api: httpx.AsyncClient,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    dev_env: WorkflowEnvironment,
) -> None:
    case_id = await worked_case(api, creditor, partner, ops)
    before = await case_rows(sessions, case_id)
    assert before["case_history"] and before["chat_messages"] and before["tasks"]

    async with sessions() as session, session.begin():
        # Altered: the case's status and debtor name, one task's title and status.
        await session.execute(
            update(Case).where(Case.id == case_id).values(status="Closed", debtor_name="X")
        )
        some_task = before["tasks"][0][0]
        await session.execute(
            update(TaskRow).where(TaskRow.id == some_task).values(title="?", status="Solved")
        )
        # Deleted: half the history, one message, every other task.
        first_seq = before["case_history"][0][1]
        await session.execute(
            delete(CaseHistory).where(CaseHistory.case_id == case_id, CaseHistory.seq > first_seq)
        )
        await session.execute(
            delete(ChatMessageRow).where(ChatMessageRow.id == before["chat_messages"][0][0])
        )
        await session.execute(
            delete(TaskRow).where(TaskRow.case_id == case_id, TaskRow.id != some_task)
        )
    assert await case_rows(sessions, case_id) != before

    result = await caseloop(cli_env(settings, dev_env), "case", "reproject", str(case_id))

    assert result.exit_code == 0, result.output
    assert f"case-{case_id}: " in result.output and "written again" in result.output
    assert await case_rows(sessions, case_id) == before


async def test_reproject_rebuilds_a_case_whose_rows_are_all_gone(
    api: httpx.AsyncClient,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    sessions: async_sessionmaker[AsyncSession],
    dev_env: WorkflowEnvironment,
) -> None:
    case_id = await worked_case(api, creditor, partner, ops)
    before = await case_rows(sessions, case_id)
    async with sessions() as session, session.begin():
        for model in reversed(TABLES):
            table = model.__table__
            key = table.c.id if model is Case else table.c.case_id
            await session.execute(delete(table).where(key == case_id))
    assert not any((await case_rows(sessions, case_id)).values())

    done = await reproject_case(dev_env.client, sessions, case_id)

    assert done.projections >= 5 and done.version == before["cases"][0][1]
    assert await case_rows(sessions, case_id) == before
    # A case's reads answer again as before.
    got = await api.get(f"/api/cases/{case_id}", headers=creditor.headers)
    assert got.status_code == 200 and got.json()["status"] == "In Collection"


async def test_reproject_leaves_an_intact_case_exactly_as_it_is(
    api: httpx.AsyncClient,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    dev_env: WorkflowEnvironment,
) -> None:
    case_id = await worked_case(api, creditor, partner, ops)
    before = await case_rows(sessions, case_id)
    version = before["cases"][0][1]

    for _ in range(2):  # idempotent: once, and again
        result = await caseloop(cli_env(settings, dev_env), "case", "reproject", str(case_id))
        assert result.exit_code == 0, result.output
        assert await case_rows(sessions, case_id) == before

    state = await dev_env.client.get_workflow_handle(f"case-{case_id}").query("get_state")
    assert state["version"] == version, "the workflow's version did not move"


async def test_reproject_all_covers_every_case_in_batches_with_progress(
    api: httpx.AsyncClient,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    dev_env: WorkflowEnvironment,
) -> None:
    case_id = await worked_case(api, creditor, partner, ops)
    before = await case_rows(sessions, case_id)
    async with sessions() as session, session.begin():
        await session.execute(delete(CaseHistory).where(CaseHistory.case_id == case_id))

    result = await caseloop(
        cli_env(settings, dev_env), "case", "reproject", "--all", "--batch", "2"
    )

    assert "cases reprojected" in result.output, result.output
    assert await case_rows(sessions, case_id) == before


async def account_tasks(
    sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> list[tuple[Any, ...]]:
    async with sessions() as session:
        query = select(TaskRow.__table__).where(TaskRow.owner_org_id == creditor.org_id)
        return [tuple(row) for row in await session.execute(query.order_by(TaskRow.id))]


async def test_reproject_restores_a_creditor_accounts_contract_and_tasks(
    api: httpx.AsyncClient,
    creditor: Actor,
    sessions: async_sessionmaker[AsyncSession],
    dev_env: WorkflowEnvironment,
) -> None:
    await new_case(api, creditor)  # no bank account, contract unsigned: two account tasks
    await eventually(lambda: account_tasks(sessions, creditor))
    signed = await api.post("/api/account/contract/sign", headers=creditor.headers)
    assert signed.status_code == 200, signed.text
    query = select(Organisation.contract_signed_at, Organisation.account_version).where(
        Organisation.id == creditor.org_id
    )
    async with sessions() as session:
        before = (await session.execute(query)).one()
    tasks = await account_tasks(sessions, creditor)
    assert before.contract_signed_at is not None and len(tasks) == 2
    async with sessions() as session, session.begin():
        await session.execute(
            update(Organisation)
            .where(Organisation.id == creditor.org_id)
            .values(contract_signed_at=None, account_version=0)
        )
        await session.execute(delete(TaskRow).where(TaskRow.owner_org_id == creditor.org_id))

    await reproject(dev_env.client, sessions, creditor_workflow_id(creditor.org_id))

    async with sessions() as session:
        assert (await session.execute(query)).one() == before
    assert await account_tasks(sessions, creditor) == tasks


async def test_reproject_after_a_reset_drops_what_only_the_abandoned_run_wrote(
    api: httpx.AsyncClient,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    dev_env: WorkflowEnvironment,
) -> None:
    case = await in_collection(api, creditor, partner, ops)
    case_id = uuid.UUID(case["caseId"])
    workflow_id = f"case-{case_id}"
    kept = (await post_chat(api, creditor, str(case_id), "Before the reset")).json()
    dropped = (await post_chat(api, creditor, str(case_id), "After the reset point")).json()
    # Reset to the workflow task that accepted the last message's update: its commands (the
    # update, its projection) come after that event, and are what the reset undoes.
    events = (await dev_env.client.get_workflow_handle(workflow_id).fetch_history()).events
    accepted = max(
        e.event_id
        for e in events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    )
    reset_point = max(
        e.event_id
        for e in events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED and e.event_id < accepted
    )
    await dev_env.client.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=dev_env.client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=workflow_id),
            reason="test: undo the last message",
            workflow_task_finish_event_id=reset_point,
            request_id=str(uuid.uuid4()),
            reset_reapply_exclude_types=[
                ResetReapplyExcludeType.RESET_REAPPLY_EXCLUDE_TYPE_SIGNAL,
                ResetReapplyExcludeType.RESET_REAPPLY_EXCLUDE_TYPE_UPDATE,
            ],
        )
    )
    state = await eventually(lambda: _state_of(dev_env, workflow_id))

    async def message_ids() -> set[str]:
        return {row[0] for row in (await case_rows(sessions, case_id))["chat_messages"]}

    env = cli_env(settings, dev_env)
    plain = await caseloop(env, "case", "reproject", str(case_id))
    assert plain.exit_code == 0, plain.output
    # The version guards keep the abandoned run's rows: the reason for --after-reset.
    assert dropped["id"] in await message_ids()

    result = await caseloop(env, "case", "reproject", str(case_id), "--after-reset")
    result = await caseloop(env, "case", "reproject", str(case_id), "--after-reset")

    assert result.exit_code == 0, result.output
    ids = await message_ids()
    assert kept["id"] in ids and dropped["id"] not in ids
    rows = await case_rows(sessions, case_id)
    assert rows["cases"][0][1] == state["version"], "the row is at the reset run's version"
    assert len(rows["case_history"]) == state["historySeq"]
    status = list(TaskRow.__table__.columns.keys()).index("status")
    assert {row[0] for row in rows["tasks"] if row[status] == "Open"} == {
        t["id"] for t in state["book"]["tasks"] if t["status"] == "Open"
    }


async def _state_of(dev_env: WorkflowEnvironment, workflow_id: str) -> dict[str, Any] | None:
    try:
        state = await dev_env.client.get_workflow_handle(workflow_id).query("get_state")
    except Exception:
        return None
    return dict(state) if state["version"] == state["projectedVersion"] else None
