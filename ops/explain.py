"""Explain a case in plain words: ``caseloop case explain ID`` and
``GET /api/ops/cases/{id}/explain`` (one builder, ``explain_case``; the CLI prints ``text()``, the
endpoint answers the model as JSON).

What it reads: the workflow's live state (the ``get_state`` query; the read model's rows when
the workflow does not answer), ``describe()`` (run status, pending activities and their last
failure, a workflow task being retried, the ``ProjectionBlocked`` search attribute), the run's
event history (pending timers, the last events, a failed workflow task or local activity) and
the read model (the case row's version, the organisations that owe the tasks). It names
organisations, task types and titles, ids and times; never the debtor, a message's text or an
update's arguments, which ops read elsewhere if they must.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import deque
from typing import Any, Literal
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.api.failure.v1 import Failure as FailureProto
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from domain import search_attributes as sa
from domain.base import ApiModel
from domain.cases import CaseState
from domain.ids import case_workflow_id
from domain.tasks import TaskStatus
from store.models import Case, Organisation, TaskRow

RECENT_EVENTS = 12  # history events shown
QUERY_SECONDS = 5  # how long the workflow has to answer the state query
_TEXT_LIMIT = 300  # characters of a failure message


class ExplainedTask(ApiModel):
    """An open task: what it is, who owes it (organisation name), and when it is due."""

    id: str
    type: str
    title: str
    owed_by: str
    owed_by_id: UUID
    deadline: dt.datetime | None
    overdue_since: dt.datetime | None


class PendingTimer(ApiModel):
    """A timer the workflow runs and what it waits for (its summary)."""

    fires_at: dt.datetime
    waits_for: str


class HistoryLine(ApiModel):
    """One history event in words."""

    event_id: int
    at: dt.datetime
    what: str


class FailingWork(ApiModel):
    """Something that fails: an activity, a workflow task or the projection."""

    what: str
    attempts: int | None = None
    last_failure: str | None = None


class CaseExplanation(ApiModel):
    """Everything ``caseloop case explain`` says about a case."""

    case_id: UUID
    case_number: str | None
    workflow_id: str
    workflow_status: str | None  # Running, Completed, ... (None: no workflow)
    status: str | None
    sub_status: str | None
    state_from: Literal["workflow", "read model"]
    open_tasks: list[ExplainedTask]
    next_deadline: dt.datetime | None
    pending_timers: list[PendingTimer]
    recent_events: list[HistoryLine]
    workflow_version: int | None
    read_model_version: int | None
    projection_lag: int | None
    failing: list[FailingWork]
    # What the case waits on (domain/waiting.py), as its workflow publishes it: the
    # ``WaitingOn`` and ``NextStepAt`` search attributes, and in words (its ``waiting_in_words``
    # query, the lines of its current details).
    waiting_on: list[str] | None = None
    next_step_at: dt.datetime | None = None
    waiting: list[str] = []
    notes: list[str]

    def text(self) -> str:
        """The explanation in plain words, for a terminal."""
        status = self.status or "unknown status"
        if self.sub_status:
            status += f" · {self.sub_status}"
        lines = [
            f"Case {self.case_number or '?'} ({self.case_id}): {status}",
            f"Workflow {self.workflow_id}: {self.workflow_status or 'not found'}",
            f"(status and tasks as the {self.state_from} has them)",
            "",
        ]
        if self.waiting_on is not None:
            next_step = f", next step {_when(self.next_step_at)}" if self.next_step_at else ""
            orphan = (
                " (an orphan: nothing will move it; docs/operations.md, 'A case waits on nobody')"
                if "Nobody" in self.waiting_on
                else ""
            )
            lines.append(f"Waiting on: {', '.join(self.waiting_on) or '-'}{next_step}{orphan}")
            lines += [f"  - {line}" for line in self.waiting]
        if self.open_tasks:
            lines.append("Open tasks:")
            for task in self.open_tasks:
                due = f"due {_when(task.deadline)}" if task.deadline else "no deadline"
                overdue = (
                    f", OVERDUE since {_when(task.overdue_since)}" if task.overdue_since else ""
                )
                lines.append(
                    f"  - {task.type} '{task.title}', owed by {task.owed_by}: {due}{overdue}"
                    f" [{task.id}]"
                )
        else:
            lines.append("Open tasks: none")
        lines.append(
            f"Next deadline: {_when(self.next_deadline)}"
            if self.next_deadline
            else "Next deadline: none"
        )
        if self.pending_timers:
            lines.append("Pending timers:")
            lines += [f"  - fires {_when(t.fires_at)}: {t.waits_for}" for t in self.pending_timers]
        else:
            lines.append("Pending timers: none")
        lines.append("")
        if self.projection_lag is None:
            lines.append(
                f"Projection: workflow version {_or_unknown(self.workflow_version)}, "
                f"read model version {_or_unknown(self.read_model_version)}"
            )
        elif self.projection_lag == 0:
            lines.append(f"Projection: up to date (version {self.workflow_version})")
        else:
            lines.append(
                f"Projection: {self.projection_lag} change(s) behind (workflow version "
                f"{self.workflow_version}, read model {self.read_model_version})"
            )
        if self.failing:
            lines.append("Failing:")
            for failing in self.failing:
                attempts = f" (attempt {failing.attempts})" if failing.attempts else ""
                why = f": {failing.last_failure}" if failing.last_failure else ""
                lines.append(f"  - {failing.what}{attempts}{why}")
        else:
            lines.append("Failing: nothing")
        lines += ["", "Last history events:"]
        lines += [
            f"  {e.event_id:>5}  {_when(e.at, seconds=True)}  {e.what}" for e in self.recent_events
        ]
        if self.notes:
            lines += ["", *self.notes]
        return "\n".join(lines)


def _when(moment: dt.datetime | None, *, seconds: bool = False) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(dt.UTC).strftime(
        "%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC"
    )


def _or_unknown(value: int | None) -> str:
    return "unknown" if value is None else str(value)


async def explain_case(
    client: Client, sessions: async_sessionmaker[AsyncSession], case_id: UUID
) -> CaseExplanation | None:
    """The case explained; None when neither Temporal nor the read model knows it."""
    from workflows.case import CaseWorkflow  # the query's definition (imports the workflows)

    workflow_id = case_workflow_id(case_id)
    handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(workflow_id)
    notes: list[str] = []
    description: WorkflowExecutionDescription | None = None
    try:
        description = await handle.describe()
    except RPCError as error:
        if error.status is not RPCStatusCode.NOT_FOUND:
            raise
    async with sessions() as session:
        row = await session.get(Case, case_id)
        read_rows = await _open_task_rows(session, case_id) if row is not None else []
    if description is None and row is None:
        return None

    state: CaseState | None = None
    waiting: list[str] = []
    history = _History()
    if description is not None:
        try:
            state = await handle.query(
                CaseWorkflow.get_state, rpc_timeout=dt.timedelta(seconds=QUERY_SECONDS)
            )
        except Exception as error:  # no worker, or a workflow task that keeps failing
            notes.append(
                f"The workflow did not answer its state query ({type(error).__name__}: "
                f"{str(error)[:_TEXT_LIMIT]}); status and tasks are the read model's."
            )
        if state is not None:
            try:
                waiting = await handle.query(
                    CaseWorkflow.waiting_in_words, rpc_timeout=dt.timedelta(seconds=QUERY_SECONDS)
                )
            except Exception:  # an older worker without the query: the attributes say enough
                waiting = []
        await history.read(client, handle)
    else:
        notes.append("Temporal has no workflow for this case (deleted, or past retention).")

    status: str | None
    if state is not None:
        record = state.record
        status = record.status.value
        sub_status = record.sub_status.value if record.sub_status else None
        case_number: str | None = record.case_number
        tasks = [
            (t.id, t.type.value, t.title, t.owner_org_id, t.deadline, t.overdue_since)
            for t in state.book.tasks
            if t.status is TaskStatus.OPEN
        ]
    else:
        status = row.status if row is not None else None
        sub_status = row.sub_status if row is not None else None
        case_number = row.case_number if row is not None else None
        tasks = [
            (t.id, t.type, t.title, t.owner_org_id, t.deadline, t.overdue_since) for t in read_rows
        ]
    async with sessions() as session:
        names = await _org_names(session, {task[3] for task in tasks})
    open_tasks = [
        ExplainedTask(
            id=task_id,
            type=type_,
            title=title,
            owed_by=names.get(owner, str(owner)),
            owed_by_id=owner,
            deadline=deadline,
            overdue_since=overdue_since,
        )
        for task_id, type_, title, owner, deadline, overdue_since in tasks
    ]
    upcoming = [t.deadline for t in open_tasks if t.deadline and t.overdue_since is None]
    moments = [*upcoming, *([state.next_survey_at] if state and state.next_survey_at else [])]

    failing = list(history.failing)
    if description is not None:
        failing = _failing_activities(description) + failing
        pending_task = description.raw_description.pending_workflow_task
        if pending_task.attempt > 1:
            failing.append(
                FailingWork(
                    what="workflow task (retrying: the worker fails it)",
                    attempts=pending_task.attempt,
                    last_failure=history.last_task_failure,
                )
            )
        if description.typed_search_attributes.get(sa.PROJECTION_BLOCKED):
            failing.append(
                FailingWork(
                    what="projection blocked: the read model refuses this case's writes and the "
                    "workflow refuses changes (docs/operations.md, 'A projection is blocked')"
                )
            )
    workflow_version = state.version if state is not None else None
    read_version = row.version if row is not None else None
    lag = (
        workflow_version - read_version
        if workflow_version is not None and read_version is not None
        else None
    )
    if row is None:
        notes.append(
            "The read model has no row for this case: `caseloop case reproject "
            f"{case_id}` writes it again."
        )
    return CaseExplanation(
        case_id=case_id,
        case_number=case_number,
        workflow_id=workflow_id,
        workflow_status=description.status.name.replace("_", " ").title()
        if description is not None and description.status is not None
        else None,
        status=status,
        sub_status=sub_status,
        state_from="workflow" if state is not None else "read model",
        open_tasks=open_tasks,
        next_deadline=min(moments) if moments else None,
        pending_timers=history.pending_timers(),
        recent_events=list(history.recent),
        workflow_version=workflow_version,
        read_model_version=read_version,
        projection_lag=lag,
        failing=failing,
        waiting_on=description.typed_search_attributes.get(sa.WAITING_ON)
        if description is not None
        else None,
        next_step_at=description.typed_search_attributes.get(sa.NEXT_STEP_AT)
        if description is not None
        else None,
        waiting=waiting,
        notes=notes,
    )


async def _open_task_rows(session: AsyncSession, case_id: UUID) -> list[TaskRow]:
    query = select(TaskRow).where(
        TaskRow.case_id == case_id, TaskRow.status == TaskStatus.OPEN.value
    )
    return list(await session.scalars(query.order_by(TaskRow.sort_deadline, TaskRow.id)))


async def _org_names(session: AsyncSession, ids: set[UUID]) -> dict[UUID, str]:
    if not ids:
        return {}
    rows = await session.execute(
        select(Organisation.id, Organisation.name).where(Organisation.id.in_(ids))
    )
    return {org_id: name for org_id, name in rows}


def _failing_activities(description: WorkflowExecutionDescription) -> list[FailingWork]:
    failing = []
    for pending in description.raw_description.pending_activities:
        if pending.attempt > 1 or pending.HasField("last_failure"):
            failing.append(
                FailingWork(
                    what=f"activity {pending.activity_type.name} (retrying)",
                    attempts=pending.attempt,
                    last_failure=pending.last_failure.message[:_TEXT_LIMIT] or None
                    if pending.HasField("last_failure")
                    else None,
                )
            )
    return failing


_QUIET = {
    EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
}


class _History:
    """Reads a run's events: the last ones in words, the timers still pending, what failed."""

    def __init__(self) -> None:
        self.recent: deque[HistoryLine] = deque(maxlen=RECENT_EVENTS)
        self._timers: dict[int, PendingTimer] = {}
        self._updates: dict[str, str] = {}  # accepted update's protocol instance id -> its name
        self._task_failures: list[FailingWork] = []
        self._local_failures: dict[str, FailingWork] = {}  # the last failure of each, in a row
        self.last_task_failure: str | None = None
        self._client: Client | None = None

    @property
    def failing(self) -> list[FailingWork]:
        """What failed last and has not succeeded since: local activities, a workflow task."""
        return [*self._local_failures.values(), *self._task_failures]

    def pending_timers(self) -> list[PendingTimer]:
        return sorted(self._timers.values(), key=lambda timer: timer.fires_at)

    async def read(self, client: Client, handle: WorkflowHandle[Any, Any]) -> None:
        self._client = client
        async for event in handle.fetch_history_events():
            what = await self._describe(event)
            if what is not None:
                self.recent.append(
                    HistoryLine(
                        event_id=event.event_id, at=event.event_time.ToDatetime(dt.UTC), what=what
                    )
                )

    async def _summary(self, event: HistoryEvent) -> str | None:
        if not event.HasField("user_metadata") or not event.user_metadata.HasField("summary"):
            return None
        return await self._payload_text(event.user_metadata.summary)

    async def _payload_text(self, payload: Payload) -> str | None:
        assert self._client is not None
        try:
            [text] = await self._client.data_converter.decode([payload], [str])
            return str(text)
        except Exception:
            return None

    async def _failure_text(self, failure: FailureProto) -> str:
        assert self._client is not None
        try:
            error = await self._client.data_converter.decode_failure(failure)
            text = str(error) or type(error).__name__
        except Exception:
            text = failure.message
        return text[:_TEXT_LIMIT]

    async def _describe(self, event: HistoryEvent) -> str | None:
        kind = event.event_type
        at = event.event_time.ToDatetime(dt.UTC)
        attrs: Any  # each kind of event has its own attributes
        if kind in _QUIET:
            if kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                self.last_task_failure = None  # a later success ends a failing streak
                self._task_failures = []
            return None
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            attrs = event.workflow_execution_started_event_attributes
            if attrs.continued_execution_run_id:
                return "workflow continued as new (carrying its state) from the previous run"
            return "workflow started"
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            attrs = event.workflow_execution_update_accepted_event_attributes
            name = attrs.accepted_request.input.name
            self._updates[attrs.protocol_instance_id] = name
            return f"update {name} accepted"
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            attrs = event.workflow_execution_update_completed_event_attributes
            name = self._updates.get(attrs.meta.update_id, "")
            outcome = "failed" if attrs.outcome.HasField("failure") else "completed"
            return f"update {name or attrs.meta.update_id} {outcome}".replace("  ", " ")
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            return (
                f"signal {event.workflow_execution_signaled_event_attributes.signal_name} received"
            )
        if kind == EventType.EVENT_TYPE_TIMER_STARTED:
            attrs = event.timer_started_event_attributes
            fires = at + attrs.start_to_fire_timeout.ToTimedelta()
            waits_for = await self._summary(event) or f"timer {attrs.timer_id}"
            self._timers[event.event_id] = PendingTimer(fires_at=fires, waits_for=waits_for)
            return f"timer started: {waits_for}, fires {_when(fires)}"
        if kind == EventType.EVENT_TYPE_TIMER_FIRED:
            timer = self._timers.pop(event.timer_fired_event_attributes.started_event_id, None)
            return f"timer fired: {timer.waits_for if timer else 'a timer'}"
        if kind == EventType.EVENT_TYPE_TIMER_CANCELED:
            timer = self._timers.pop(event.timer_canceled_event_attributes.started_event_id, None)
            return f"timer cancelled: {timer.waits_for if timer else 'a timer'}"
        if kind == EventType.EVENT_TYPE_MARKER_RECORDED:
            attrs = event.marker_recorded_event_attributes
            activity = _local_activity_type(attrs.details) or attrs.marker_name
            summary = await self._summary(event)
            label = f"local activity {activity}" + (f" ({summary})" if summary else "")
            key = f"local activity {activity}"
            if attrs.HasField("failure"):
                why = await self._failure_text(attrs.failure)
                before = self._local_failures.get(key)
                attempts = (before.attempts or 1) + 1 if before else 1
                self._local_failures[key] = FailingWork(
                    what=label, attempts=attempts, last_failure=why
                )
                return f"{label} failed: {why}"
            self._local_failures.pop(key, None)  # it succeeded since
            return f"{label} done"
        if kind == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            attrs = event.workflow_task_failed_event_attributes
            cause = WorkflowTaskFailedCause.Name(attrs.cause).removeprefix(
                "WORKFLOW_TASK_FAILED_CAUSE_"
            )
            why = await self._failure_text(attrs.failure) if attrs.HasField("failure") else ""
            self.last_task_failure = f"{cause.lower().replace('_', ' ')}: {why}".strip(": ")
            self._task_failures = [
                FailingWork(what="workflow task failed", last_failure=self.last_task_failure)
            ]
            return f"workflow task failed ({self.last_task_failure})"
        if kind == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
            return "workflow task timed out (the worker took too long or went away)"
        if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            return f"activity {attrs.activity_type.name} scheduled"
        if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
            why = await self._failure_text(event.activity_task_failed_event_attributes.failure)
            return f"activity failed: {why}"
        if kind == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
            return "search attributes set: " + ", ".join(sorted(fields.indexed_fields))
        name = EventType.Name(kind).removeprefix("EVENT_TYPE_").lower().replace("_", " ")
        return name


def _local_activity_type(details: Any) -> str | None:
    """The activity type core records in a local activity's marker (JSON, not encrypted)."""
    try:
        data = details["data"].payloads[0].data
        return str(json.loads(data)["activity_type"])
    except Exception:
        return None
