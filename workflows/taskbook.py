"""The task machinery every task-owning workflow shares: raise, solve, overdue, postpone, assign.

Runs inside workflows: no I/O and no clock but the ``now`` passed in. Deadlines are not computed
here: a new task is marked as needing one and the projection activity the main loop runs gives
it one as it writes the task (``given_deadlines``), so raising a task never awaits and two
handlers can never raise twins.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from uuid import UUID

from temporalio.exceptions import ApplicationError

from domain.accounts import OrgRef
from domain.errors import TASK_NOT_FOUND, TASK_NOT_OPEN, TASK_NOT_RESOLVABLE_BY_HAND
from domain.escalation import (
    TASK_OVERDUE,
    Anchor,
    FiredStep,
    LadderPlan,
    Step,
    StepNotice,
)
from domain.tasks import (
    CATALOGUE,
    AccessLevel,
    OutboxEvent,
    ProjectionResult,
    ResolvedBy,
    Scope,
    Task,
    TaskBookState,
    TaskStatus,
    TaskType,
    needs_default_deadline,
    needs_ladder,
    task_id,
)


class TaskBook:
    """Operations on a workflow's ``TaskBookState``; ``touch`` marks the workflow as changed."""

    def __init__(
        self, state: TaskBookState, *, workflow_id: str, touch: Callable[[], None]
    ) -> None:
        self.state = state
        self.workflow_id = workflow_id
        self._touch = touch

    # -- queries ------------------------------------------------------------------------------
    def open_tasks(self) -> list[Task]:
        return [t for t in self.state.tasks if t.status is TaskStatus.OPEN]

    def find_open(self, type: TaskType, *, key: str | None = None) -> Task | None:
        for task in self.open_tasks():
            if task.type is type and (key is None or task.key == key):
                return task
        return None

    def get(self, task_id_: str) -> Task:
        for task in self.state.tasks:
            if task.id == task_id_:
                return task
        raise ApplicationError(
            f"task {task_id_} not found", type=TASK_NOT_FOUND, non_retryable=True
        )

    def get_open(self, task_id_: str) -> Task:
        task = self.get(task_id_)
        if task.status is not TaskStatus.OPEN:
            raise ApplicationError(
                f"task {task_id_} is already solved", type=TASK_NOT_OPEN, non_retryable=True
            )
        return task

    def ever_raised(self, key: str) -> bool:
        """Whether a task with this key was ever raised by this workflow (this run or before)."""
        return self.state.key_seq.get(key, 0) > 0

    def needs_deadlines(self) -> list[Task]:
        """Tasks waiting for what the projection gives them: a default deadline, or a ladder
        plan (for the deadline they have: a new or a postponed task)."""
        return [t for t in self.state.tasks if needs_default_deadline(t) or needs_ladder(t)]

    def next_step(self) -> tuple[dt.datetime, Task, Step] | None:
        """The ladder step that comes first among the open tasks' plans, not yet fired."""
        first: tuple[dt.datetime, Task, Step] | None = None
        for task in self.open_tasks():
            for step, when in self._planned(task):
                if first is None or when < first[0]:
                    first = (when, task, step)
                break  # a task's steps come in order: its first unfired one is its next
        return first

    def last_fired(self) -> tuple[Task, FiredStep] | None:
        """The step that fired last among the tasks this workflow holds (for the UI)."""
        fired = [(step.at, task, step) for task in self.state.tasks for step in task.escalations]
        if not fired:
            return None
        _, task, step = max(fired, key=lambda item: item[0])
        return task, step

    def next_deadline(self) -> Task | None:
        """The open, not yet overdue task whose deadline comes first."""
        pending = [t for t in self.open_tasks() if t.deadline and t.overdue_since is None]
        return min(pending, key=lambda t: t.deadline or dt.datetime.max, default=None)

    def overdue_count(self) -> int:
        return sum(1 for t in self.open_tasks() if t.overdue_since is not None)

    def open_types(self) -> list[str]:
        return sorted({t.type.value for t in self.open_tasks()})

    # -- changes ------------------------------------------------------------------------------
    def raise_task(
        self,
        type: TaskType,
        *,
        key: str,
        now: dt.datetime,
        owner: OrgRef,
        title: str,
        description: str,
        case_id: UUID | None = None,
        relationship_id: UUID | None = None,
        access: AccessLevel | None = None,
        deadline: dt.datetime | None = None,
    ) -> Task:
        """Open a task unless one with this key is already open (then return that one).

        ``key`` names the situation (e.g. ``review:<partnerId>``); a key raised again after its
        task was solved gets a fresh id.
        """
        existing = self._open_with_key(key)
        if existing is not None:
            return existing
        spec = CATALOGUE[type]
        self.state.key_seq[key] = self.state.key_seq.get(key, 0) + 1
        task = Task(
            id=self._id_for(key),
            type=type,
            title=title,
            description=description,
            access_level=access or spec.access or AccessLevel.CREDITOR,
            scope=Scope.ACCOUNT if relationship_id is not None else spec.scope,
            owner_org_id=owner.id,
            owner_country=owner.country,
            owner_timezone=owner.timezone,
            case_id=case_id,
            relationship_id=relationship_id,
            deadline=deadline,
            original_deadline=deadline,
            date_created=now,
            key=key,
            workflow_id=self.workflow_id,
        )
        self.state.tasks.append(task)
        self._changed(task)
        self._event("task.created", task, now)
        return task

    def given(self, result: ProjectionResult, *, now: dt.datetime) -> None:
        """What the projection gave the tasks it wrote: deadlines, then ladder plans."""
        self.given_deadlines(result.deadlines)
        self.given_ladders(result.ladders, now=now)

    def given_ladders(self, plans: dict[str, LadderPlan], *, now: dt.datetime) -> None:
        """The ladder plans the projection made (``ProjectionResult.ladders``). A plan is kept
        only for the deadline it was made for (a task postponed meanwhile is planned again),
        and without the moments already past ``now``: a plan never fires a step in arrears, so
        postponing does not fire again what fired for the old deadline. Workflow state only
        (the rows show the steps that fired), so no change of its own."""
        for task in self.state.tasks:
            plan = plans.get(task.id)
            if plan is not None and plan.deadline == task.deadline:
                task.ladder = LadderPlan(
                    deadline=plan.deadline,
                    moments={step: when for step, when in plan.moments.items() if when > now},
                )

    def given_deadlines(self, deadlines: dict[str, dt.datetime]) -> None:
        """The deadlines the projection gave tasks as it wrote them (``ProjectionResult``): the
        rows already hold them, at the tasks' current versions, so this is no change of its
        own. A task that got a deadline meanwhile (postponed) keeps that one."""
        for task in self.state.tasks:
            deadline = deadlines.get(task.id)
            if deadline is not None and task.deadline is None:
                task.deadline = deadline
                if task.original_deadline is None:
                    task.original_deadline = deadline

    def retitle(self, task: Task, title: str, description: str | None = None) -> None:
        if task.title != title or (description is not None and task.description != description):
            task.title = title
            task.description = description if description is not None else task.description
            self._changed(task)

    def solve(self, task: Task, *, now: dt.datetime, by: ResolvedBy) -> None:
        if task.status is TaskStatus.SOLVED:
            return
        task.status = TaskStatus.SOLVED
        task.date_solved = now
        task.resolved_by = by
        self._changed(task)
        self._event("task.solved", task, now, reason=by.reason)

    def solve_open(
        self,
        type: TaskType,
        *,
        now: dt.datetime,
        reason: str,
        key: str | None = None,
        user_id: UUID | None = None,
        org_id: UUID | None = None,
    ) -> None:
        """Solve every open task of ``type`` (and ``key``). A task is credited to ``user_id``
        only when ``org_id`` (that user's organisation) owns it; any other is solved by the
        system, so a user id never shows up in the other side's task list."""
        for task in self.open_tasks():
            if task.type is type and (key is None or task.key == key):
                mine = user_id is not None and task.owner_org_id == org_id
                by = ResolvedBy(
                    kind="user" if mine else "system",
                    user_id=user_id if mine else None,
                    reason=reason,
                )
                self.solve(task, now=now, by=by)

    def mark_overdue(self, now: dt.datetime) -> list[Task]:
        """Flag open tasks whose deadline has passed; each gets one ``task.overdue`` event."""
        newly = [
            t
            for t in self.open_tasks()
            if t.deadline is not None and t.overdue_since is None and t.deadline <= now
        ]
        for task in newly:
            task.overdue_since = now
            self._changed(task)
            self._event(
                "task.overdue",
                task,
                now,
                deadline=task.deadline.isoformat() if task.deadline else None,
            )
        return newly

    def fire_due_steps(self, now: dt.datetime) -> list[StepNotice]:
        """Fire every planned ladder step whose moment has come, in order, each once per
        deadline: record it on the task (``escalations``), emit its event (the breach's
        ``task.overdue`` is ``mark_overdue``'s, one per breach) and answer with the e-mails
        to send (``StepNotice``), which the owner's ``ladder`` outbox hands to their own
        ``NoticeWorkflow``s."""
        notices: list[StepNotice] = []
        for task in self.open_tasks():
            due = [(step, when) for step, when in self._planned(task) if when <= now]
            for step, _ in due:
                key = (
                    task.ladder.deadline if task.ladder and step.anchor is Anchor.DEADLINE else None
                )
                task.escalations.append(FiredStep(step=step.name, at=now, deadline=key))
                event = step.spec.event
                if event is not None and event != TASK_OVERDUE:
                    self._event(
                        event,
                        task,
                        now,
                        step=step.name,
                        deadline=task.deadline.isoformat() if task.deadline else None,
                    )
                notices.append(StepNotice(task_id=task.id, step=step.name, deadline=key))
            if due:
                self._changed(task)
        return notices

    def postpone(
        self, task: Task, deadline: dt.datetime, *, now: dt.datetime, reason: str, user_id: UUID
    ) -> None:
        """Move the deadline (the original stays); the reason goes out as ``task.postponed``."""
        previous = task.deadline
        if task.original_deadline is None:  # postponed before its default deadline was set
            task.original_deadline = deadline
        task.deadline = deadline
        task.overdue_since = None if deadline > now else task.overdue_since
        self._changed(task)
        self._event(
            "task.postponed",
            task,
            now,
            previousDeadline=previous.isoformat() if previous else None,
            deadline=deadline.isoformat(),
            reason=reason,
            userId=str(user_id),
        )

    def assign(self, task: Task, assignee_id: UUID | None) -> None:
        task.assignee_id = assignee_id
        self._changed(task)

    # -- projection bookkeeping ---------------------------------------------------------------
    def unprojected(self) -> tuple[list[Task], list[OutboxEvent]]:
        """Snapshots (copies) of the changed tasks and the pending events, to project."""
        # A task that needs its deadline goes along: the projection gives it one.
        dirty = set(self.state.dirty) | {t.id for t in self.needs_deadlines()}
        return (
            [t.model_copy(deep=True) for t in self.state.tasks if t.id in dirty],
            list(self.state.events),
        )

    def projected(self, tasks: list[Task], events: list[OutboxEvent]) -> None:
        """Forget what was written: solved tasks leave the state, so it stays small."""
        written = {t.id: t.version for t in tasks}
        current = {t.id: t.version for t in self.state.tasks}
        # A task changed again while the projection ran stays dirty for the next one.
        self.state.dirty = [
            i for i in self.state.dirty if i not in written or current.get(i, 0) > written[i]
        ]
        self.state.tasks = [
            t
            for t in self.state.tasks
            if not (t.status is TaskStatus.SOLVED and written.get(t.id) == t.version)
        ]
        del self.state.events[: len(events)]

    # -- internals ----------------------------------------------------------------------------
    def _planned(self, task: Task) -> list[tuple[Step, dt.datetime]]:
        """The steps of ``task``'s plan not yet fired for it, in the ladder's order."""
        plan = task.ladder
        if plan is None:
            return []
        planned = []
        for step in CATALOGUE[task.type].ladder:
            when = plan.moments.get(step.name)
            if when is None:
                continue
            key = plan.deadline if step.anchor is Anchor.DEADLINE else None
            if any(f.step == step.name and f.deadline == key for f in task.escalations):
                continue
            planned.append((step, when))
        return planned

    def _id_for(self, key: str) -> str:
        return task_id(self.workflow_id, f"{key}#{self.state.key_seq.get(key, 0)}")

    def _open_with_key(self, key: str) -> Task | None:
        return next((t for t in self.open_tasks() if t.key == key), None)

    def _changed(self, task: Task) -> None:
        task.version += 1
        if task.id not in self.state.dirty:
            self.state.dirty.append(task.id)
        self._touch()

    def _event(self, type: str, task: Task, now: dt.datetime, **extra: object) -> None:
        self.emit(
            type,
            now=now,
            org_id=task.owner_org_id,
            case_id=task.case_id,
            payload={"taskId": task.id, "taskType": task.type.value, **extra},
        )

    def emit(
        self,
        type: str,
        *,
        now: dt.datetime,
        org_id: UUID | None,
        case_id: UUID | None,
        payload: dict[str, object],
    ) -> None:
        """Queue an outbox event; it is written with the next projection, exactly once."""
        self.state.event_seq += 1
        self.state.events.append(
            OutboxEvent(
                id=task_id(self.workflow_id, f"event#{self.state.event_seq}"),
                type=type,
                org_id=org_id,
                case_id=case_id,
                occurred_at=now,
                payload=payload,
            )
        )
        self._touch()


def check_open_and_resolvable_by_hand(task: Task) -> None:
    spec = CATALOGUE[task.type]
    if task.type is not TaskType.GENERIC and not spec.mark_as_done:
        raise ApplicationError(
            f"{task.type.value} tasks resolve themselves when their condition clears "
            f"({spec.resolves_when}); only Generic and mark-as-done tasks are closed by hand",
            type=TASK_NOT_RESOLVABLE_BY_HAND,
            non_retryable=True,
        )
