"""CaseWorkflow run directly through a Temporal client, started the way ``POST /api/cases`` does."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

import worker as caseloop_worker
from activities.projection import ProjectionActivities
from domain import search_attributes as sa
from domain.cases import CaseProjection, HistoryEntry
from domain.enums import CaseStatus, ChangedBy
from domain.tasks import ProjectionResult
from store.db import create_engine, session_factory
from store.models import Case, CaseHistory
from tests.support import Actor, case_start, new_case_record, submit_case
from workflows.case import CaseWorkflow


async def read_model(
    sessions: async_sessionmaker[AsyncSession], case_id: uuid.UUID
) -> tuple[list[Case], list[CaseHistory]]:
    """The case's rows as the API would read them."""
    async with sessions() as session:
        cases = list(await session.scalars(select(Case).where(Case.id == case_id)))
        history = list(
            await session.scalars(
                select(CaseHistory).where(CaseHistory.case_id == case_id).order_by(CaseHistory.seq)
            )
        )
    return cases, history


# --- a. submit -------------------------------------------------------------------------------


async def test_submit_returns_only_once_case_and_its_created_history_are_readable(
    dev_env: WorkflowEnvironment,
    worker: Worker,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
) -> None:
    record = new_case_record(creditor)
    start = case_start(record, task_queue=task_queue)

    returned = await submit_case(dev_env.client, start, requested_by=creditor.principal.user_id)

    # Read straight away, without polling: the update's promise is that the rows are already
    # there, including the System's note that the case now waits for a signed contract.
    state = await (await start.workflow_handle()).query(CaseWorkflow.get_state)
    cases, history = await read_model(sessions, record.case_id)
    assert [
        (c.case_number, c.creditor_id, c.creditor_reference, c.status, c.sub_status, c.version)
        for c in cases
    ] == [
        (
            record.case_number,
            creditor.org_id,
            record.submission.creditor_reference,
            "Created",
            "Pending contract signing",
            state.version,
        )
    ]
    assert [(h.seq, h.status, h.sub_status, h.changed_by, h.note) for h in history] == [
        (1, "Created", None, "API", "Case created via API"),
        (2, "Created", "Pending contract signing", "System", "Waiting: Pending contract signing"),
    ]
    assert returned.status is CaseStatus.CREATED
    assert returned.created_at == cases[0].created_at == history[0].timestamp

    assert state.version == state.projected_version > 1
    assert state.pending_history == []


# --- b. projection idempotency ----------------------------------------------------------------

T1 = dt.datetime(2026, 9, 2, 8, 0, tzinfo=dt.UTC)
T2 = dt.datetime(2026, 9, 3, 9, 30, tzinfo=dt.UTC)


def created_projection(creditor: Actor) -> CaseProjection:
    """Version 1 of a new case, as the workflow projects it on creation."""
    record = new_case_record(creditor)
    record.created_at = record.last_status_change = T1
    return CaseProjection(
        version=1,
        modified_at=T1,
        case=record,
        new_history=[
            HistoryEntry(seq=1, timestamp=T1, status=CaseStatus.CREATED, changed_by=ChangedBy.API)
        ],
    )


def validated_projection(created: CaseProjection) -> CaseProjection:
    """Version 2 of the same case: its status moved on, with one more history entry."""
    record = created.case.model_copy(
        update={"status": CaseStatus.VALIDATED, "last_status_change": T2}
    )
    return CaseProjection(
        version=2,
        modified_at=T2,
        case=record,
        new_history=[HistoryEntry(seq=2, timestamp=T2, status=CaseStatus.VALIDATED)],
    )


async def test_projecting_the_same_version_twice_writes_one_row_and_one_history_entry(
    sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    project = ProjectionActivities(sessions).project_case
    created = created_projection(creditor)

    await ActivityEnvironment().run(project, created)
    await ActivityEnvironment().run(project, created)  # a retry after a lost completion

    cases, history = await read_model(sessions, created.case.case_id)
    assert [(c.version, c.status, c.updated_at) for c in cases] == [(1, "Created", T1)]
    assert [(h.seq, h.status) for h in history] == [(1, "Created")]


async def test_older_projection_after_a_newer_one_neither_rolls_back_nor_duplicates(
    sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    project = ProjectionActivities(sessions).project_case
    created = created_projection(creditor)
    validated = validated_projection(created)

    await ActivityEnvironment().run(project, created)
    await ActivityEnvironment().run(project, validated)
    await ActivityEnvironment().run(project, validated)  # retried
    await ActivityEnvironment().run(project, created)  # a late retry of the older version

    cases, history = await read_model(sessions, created.case.case_id)
    assert [(c.version, c.status, c.last_status_change, c.updated_at) for c in cases] == [
        (2, "Validated", T2, T2)
    ]
    assert [(h.seq, h.status) for h in history] == [(1, "Created"), (2, "Validated")]


# --- c. database unavailable at first ----------------------------------------------------------


class DatabaseDownAtFirst:
    """The real projection activity, whose first ``outage`` attempts find no database.

    Registered under the real activity's name. It only chooses which database the real code talks
    to: the failures are the real activity's own errors against an unreachable SQLite file.
    """

    def __init__(
        self,
        live: async_sessionmaker[AsyncSession],
        unreachable: async_sessionmaker[AsyncSession],
        *,
        outage: int,
    ) -> None:
        self._live = ProjectionActivities(live)
        self._unreachable = ProjectionActivities(unreachable)
        self._outage = outage
        self.attempts: list[int] = []
        self.errors: list[BaseException] = []

    @activity.defn(name="project_case")
    async def project_case(self, projection: CaseProjection) -> ProjectionResult:
        attempt = activity.info().attempt
        self.attempts.append(attempt)
        target = self._unreachable if attempt <= self._outage else self._live
        try:
            return await target.project_case(projection)
        except Exception as exc:
            self.errors.append(exc)
            raise


async def wait_until(condition: Callable[[], Awaitable[bool]], *, seconds: float = 10) -> None:
    for _ in range(int(seconds * 20)):
        if await condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not reached within {seconds}s")


async def test_submit_waits_out_a_database_outage_and_loses_nothing(
    ts_env: WorkflowEnvironment,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    tmp_path: Path,
    ts_leaves_no_workflows: None,
) -> None:
    # Five failed attempts: with the projection retry policy that is 1+2+4+8+16 s of backoff, which
    # the time-skipping server skips.
    outage = 5
    unreachable_engine = create_engine(f"sqlite:///{tmp_path / 'not-mounted' / 'caseloop.db'}")
    database = DatabaseDownAtFirst(sessions, session_factory(unreachable_engine), outage=outage)
    record = new_case_record(creditor)
    start = case_start(record, task_queue=task_queue)
    try:
        async with caseloop_worker.build_worker(
            ts_env.client,
            task_queue=task_queue,
            sessions=sessions,
            replace_activities=[database.project_case],
        ):
            submitted = asyncio.create_task(
                submit_case(ts_env.client, start, requested_by=creditor.principal.user_id)
            )

            async def first_attempt_failed() -> bool:
                return len(database.errors) >= 1

            await wait_until(first_attempt_failed)
            # The database is down: the submit has not answered and nothing is half-written.
            assert not submitted.done()
            assert await read_model(sessions, record.case_id) == ([], [])

            await ts_env.sleep(dt.timedelta(minutes=5))
            returned = await asyncio.wait_for(submitted, timeout=30)

            state = await (await start.workflow_handle()).query(CaseWorkflow.get_state)
    finally:
        await unreachable_engine.dispose()

    assert database.attempts == list(range(1, outage + 2))
    assert len(database.errors) == outage
    assert all(isinstance(error, OperationalError) for error in database.errors)
    cases, history = await read_model(sessions, record.case_id)
    assert [(c.case_number, c.status, c.sub_status, c.version) for c in cases] == [
        (record.case_number, "Created", "Pending contract signing", state.version)
    ]
    assert [(h.seq, h.status, h.sub_status, h.changed_by) for h in history] == [
        (1, "Created", None, "API"),
        (2, "Created", "Pending contract signing", "System"),
    ]
    assert returned.case_id == record.case_id
    assert returned.status is CaseStatus.CREATED
    assert state.version == state.projected_version > 1
    assert state.pending_history == []


# --- d. continue-as-new -----------------------------------------------------------------------


async def test_continue_as_new_carries_the_whole_case_state_to_the_next_run(
    short_history_env: WorkflowEnvironment,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
) -> None:
    client = short_history_env.client
    record = new_case_record(creditor)
    start = case_start(record, task_queue=task_queue)
    async with caseloop_worker.build_worker(client, task_queue=task_queue, sessions=sessions):
        returned = await submit_case(client, start, requested_by=creditor.principal.user_id)
        first = await start.workflow_handle()
        first_run_id = first.result_run_id
        assert first_run_id is not None
        latest = client.get_workflow_handle(first.id)
        # The server suggests continue-as-new to a workflow task as it starts. Creating the case
        # is one workflow task (docs/decisions/0009), begun at 3 events, so the suggestion comes
        # with the next one: here a signal that changes nothing (no projection is blocked).
        await first.signal(CaseWorkflow.retry_projection)

        async def continued() -> bool:
            return (await latest.describe()).run_id != first_run_id

        await wait_until(continued)
        first_run = client.get_workflow_handle(first.id, run_id=first_run_id)
        events = (await first_run.fetch_history()).events
        description = await latest.describe()
        state_before = await first_run.query(CaseWorkflow.get_state)
        state_after = await latest.query(CaseWorkflow.get_state)

    # The first run really continued as new, into the run that is now current and waiting.
    assert events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    continued_as_new = events[-1].workflow_execution_continued_as_new_event_attributes
    assert description.run_id == continued_as_new.new_execution_run_id != first_run_id
    assert description.status == WorkflowExecutionStatus.RUNNING
    # Nothing was reset: same record (creation time included), versions and history counter.
    assert state_after == state_before
    assert state_after.record == returned
    assert state_after.version == state_after.projected_version > 1
    assert state_after.history_seq == 2
    # Ops still find the case by status and creditor.
    attributes = description.typed_search_attributes
    assert attributes.get(sa.CASE_STATUS) == "Created"
    assert attributes.get(sa.CREDITOR_ID) == str(creditor.org_id)
    # The new run did not create the case a second time.
    cases, history = await read_model(sessions, record.case_id)
    assert [(c.status, c.version, c.created_at) for c in cases] == [
        ("Created", state_after.version, returned.created_at)
    ]
    assert [(h.seq, h.status, h.sub_status) for h in history] == [
        (1, "Created", None),
        (2, "Created", "Pending contract signing"),
    ]
