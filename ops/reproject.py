"""Rebuild a workflow's read-model rows from its own history: ``caseloop case reproject``.

A workflow's state does not hold everything its projections wrote: history entries and chat
messages leave the state once projected (``CaseState.pending_history``), and a task the book
no longer keeps is only in the read model. What does hold all of it is the workflow's event
history: replaying it runs the workflow code again, and every projection it ran is started
again with the very input it had (deterministic code, decision 0004). So this replays every run
of the workflow (following continue-as-new back to the first run Temporal still keeps) with an
interceptor that notes each projection whose local activity succeeded in history, and writes
those projections again, in order, through the projection activities themselves
(``activities.projection.ProjectionActivities``: the same statements, version guards and
deterministic keys).

That restores rows that were deleted or altered (the case row, its payments and invitations,
history entries, chat messages, tasks) and leaves an intact case as it is: a projection of an
older version than a row is refused by the row's version guard, and the last one of each row
writes exactly what is there (no version moves; nothing is read from the clock). A case's
projection that carried no record (it had not changed) is written with the last record before
it, so a case row altered at its latest version is restored too. Nothing is
sent again: the outbox items a projection carried (signals to other workflows, releases) and
its outbox events (and so its webhook deliveries) are left out. The workflow itself is not
touched, and no worker needs to run.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowHistory
from temporalio.testing import ActivityEnvironment
from temporalio.worker import (
    Interceptor,
    Replayer,
    StartLocalActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)
from temporalio.workflow import ActivityHandle

from activities.projection import (
    CASE_HISTORY,
    CASES,
    MESSAGES,
    ORGANISATIONS,
    RELATIONSHIPS,
    TASKS,
    ProjectionActivities,
)
from domain.accounts import AccountProjection
from domain.cases import CaseProjection, CaseRecord
from domain.chat import RelationshipProjection
from domain.ids import case_workflow_id
from store.db import statements

# The projection activities by the name their local activity runs under.
PROJECTIONS = ("project_case", "project_account", "project_relationship")
# What a projection carries that would be sent, not written: left out of a reprojection.
_SENT_FIELDS = ("events", "account_signals", "relationship_links", "to_release")


@dataclass
class _Noted:
    activity: str
    projection: BaseModel
    succeeded: bool = False


@dataclass
class _Notebook(Interceptor):
    """Replay interceptor: notes the projections a workflow runs, and which of them succeeded."""

    noted: list[_Noted] = field(default_factory=list)

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        notebook = self

        class Outbound(WorkflowOutboundInterceptor):
            def start_local_activity(self, input: StartLocalActivityInput) -> ActivityHandle[Any]:
                handle = super().start_local_activity(input)
                if input.activity in PROJECTIONS and input.args:
                    # Copied now: the workflow may change the objects it handed over later.
                    entry = _Noted(input.activity, input.args[0].model_copy(deep=True))
                    notebook.noted.append(entry)

                    def resolved(done: Any) -> None:
                        entry.succeeded = not done.cancelled() and done.exception() is None

                    handle.add_done_callback(resolved)
                return handle

        class Inbound(WorkflowInboundInterceptor):
            def init(self, outbound: WorkflowOutboundInterceptor) -> None:
                super().init(Outbound(outbound))

        return Inbound


@dataclass(frozen=True)
class Reprojected:
    """What a reprojection did: how many runs it replayed and projections it wrote again, and
    the highest version written (None: the workflow never projected anything)."""

    workflow_id: str
    runs: int
    projections: int
    version: int | None


async def histories(client: Client, workflow_id: str) -> list[WorkflowHistory]:
    """Every run of the workflow Temporal keeps, the first run first: from the latest run back
    through each run's ``continued_execution_run_id``."""
    runs: list[WorkflowHistory] = []
    run_id: str | None = None
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        runs.append(history)
        started = history.events[0].workflow_execution_started_event_attributes
        run_id = started.continued_execution_run_id or None
        if run_id is None:
            break
        try:
            await client.get_workflow_handle(workflow_id, run_id=run_id).describe()
        except Exception:  # the earlier run is past the namespace's retention
            break
    runs.reverse()
    return runs


async def replayed_projections(client: Client, workflow_id: str) -> tuple[int, list[_Noted]]:
    """The projections the workflow's runs wrote (succeeded in history), in order."""
    import worker  # the worker's workflows and interceptors: what the workflow really runs

    notebook = _Notebook()
    replayer = Replayer(
        workflows=worker.WORKFLOWS,
        interceptors=[*worker.INTERCEPTORS, notebook],
        data_converter=client.data_converter,
        workflow_runner=worker.WORKFLOW_RUNNER,
        namespace=client.namespace,
    )
    runs = await histories(client, workflow_id)
    for history in runs:
        await replayer.replay_workflow(history)
    return len(runs), [entry for entry in notebook.noted if entry.succeeded]


async def reproject(
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    workflow_id: str,
    *,
    after_reset: bool = False,
) -> Reprojected:
    """Write the workflow's projections again (module doc). Idempotent; a case, a creditor
    account (``creditor-…``) or a relationship (``relationship-…``) workflow.

    ``after_reset``: the workflow was reset (``temporal workflow reset``), so the read model
    holds versions and numbered rows of the abandoned run that the reset run will never write
    again, and the version guards would keep them. First the workflow's numbered rows are
    deleted (its history entries, chat messages and tasks) and its row's version set back to 0,
    then everything is written from the reset run's history, and then once more from a fresh
    copy of it, for any change the workflow made meanwhile."""
    if after_reset:
        first = await _write_again(client, sessions, workflow_id, clear=True)
        second = await _write_again(client, sessions, workflow_id, clear=False)
        return second if second.projections else first
    return await _write_again(client, sessions, workflow_id, clear=False)


async def _clear(
    sessions: async_sessionmaker[AsyncSession], workflow_id: str, projection: BaseModel
) -> None:
    """Delete the numbered rows of the projection's workflow and set its row's version to 0, in
    one transaction (``reproject(after_reset=True)``)."""
    async with statements(sessions) as connection:
        if isinstance(projection, CaseProjection):
            case_id = projection.case_id
            await connection.execute(delete(CASE_HISTORY).where(CASE_HISTORY.c.case_id == case_id))
            await connection.execute(delete(MESSAGES).where(MESSAGES.c.case_id == case_id))
            await connection.execute(update(CASES).where(CASES.c.id == case_id).values(version=0))
        elif isinstance(projection, RelationshipProjection):
            pair = projection.relationship_id
            await connection.execute(delete(MESSAGES).where(MESSAGES.c.relationship_id == pair))
            await connection.execute(
                update(RELATIONSHIPS).where(RELATIONSHIPS.c.id == pair).values(version=0)
            )
        elif isinstance(projection, AccountProjection):
            await connection.execute(
                update(ORGANISATIONS)
                .where(ORGANISATIONS.c.id == projection.creditor_id)
                .values(account_version=0)
            )
        await connection.execute(delete(TASKS).where(TASKS.c.workflow_id == workflow_id))


async def _write_again(
    client: Client, sessions: async_sessionmaker[AsyncSession], workflow_id: str, *, clear: bool
) -> Reprojected:
    runs, projections = await replayed_projections(client, workflow_id)
    if clear and projections:
        await _clear(sessions, workflow_id, projections[0].projection)
    activities = ProjectionActivities(sessions)  # no messenger, no waker: nothing is sent
    write: dict[str, Callable[[Any], Any]] = {
        "project_case": activities.project_case,
        "project_account": activities.project_account,
        "project_relationship": activities.project_relationship,
    }
    environment = ActivityEnvironment()
    version: int | None = None
    record: CaseRecord | None = None
    for entry in projections:
        fields = type(entry.projection).model_fields
        changes: dict[str, Any] = {name: [] for name in _SENT_FIELDS if name in fields}
        if isinstance(entry.projection, CaseProjection):
            # Without a record the case's record had not changed since the last one: it is
            # written whole at every version, so an altered row comes back at the version it has.
            record = entry.projection.case or record
            changes["case"] = record
        projection = entry.projection.model_copy(update=changes)
        await environment.run(write[entry.activity], projection)
        version = max(version or 0, int(getattr(projection, "version", 0)))
    return Reprojected(workflow_id, runs, len(projections), version)


async def reproject_case(
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    case_id: uuid.UUID,
    *,
    after_reset: bool = False,
) -> Reprojected:
    return await reproject(client, sessions, case_workflow_id(case_id), after_reset=after_reset)


async def case_workflow_ids(client: Client, *, page_size: int = 100) -> AsyncIterator[str]:
    """The id of every case workflow Temporal knows (open or closed, once each)."""
    seen: set[str] = set()
    async for execution in client.list_workflows(
        "WorkflowType = 'CaseWorkflow'", page_size=page_size
    ):
        if execution.id not in seen:
            seen.add(execution.id)
            yield execution.id


async def reproject_all(
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    *,
    batch: int = 20,
    progress: Callable[[int, list[str]], None] | None = None,
) -> list[str]:
    """Reproject every case workflow, ``batch`` at a time, calling ``progress`` after each
    batch (cases done so far, failures so far); the failures, as ``"<workflow id>: <why>"``."""
    done = 0
    failed: list[str] = []
    pending: list[str] = []

    async def one(workflow_id: str) -> None:
        try:
            await reproject(client, sessions, workflow_id)
        except Exception as error:
            failed.append(f"{workflow_id}: {type(error).__name__}: {error}"[:300])

    async def flush() -> None:
        nonlocal done
        await asyncio.gather(*(one(workflow_id) for workflow_id in pending))
        done += len(pending)
        pending.clear()
        if progress is not None:
            progress(done, failed)

    async for workflow_id in case_workflow_ids(client):
        pending.append(workflow_id)
        if len(pending) >= batch:
            await flush()
    if pending or done == 0:
        await flush()
    return failed
