"""What every task-owning workflow shares: the main loop, deadline timers, task updates.

A subclass keeps its state in ``self.state`` (with ``version``, ``projected_version`` and
``book``), implements ``_project`` and may override ``_advance`` (react to changes),
``_outboxes`` (messages to other workflows) and ``_finished``. Handlers only change state and
call ``_touch``; the main loop reacts and projects in the workflow task that accepted the change
(one local activity, which also gives new tasks their deadlines: docs/decisions/0009), then
sleeps until something changes or the earliest deadline passes. What the outboxes hold when a
projection starts goes along with it, in the same local activity; what it could not deliver is
sent by the outbox's own coroutine, never in the loop's way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, NamedTuple

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain import search_attributes as sa
    from domain import update_ids
    from domain.chat import CHAT_TASKS, CLEANUP_REASON, DismissChatTaskInput
    from domain.errors import (
        INVALID_DEADLINE,
        PROJECTION_BLOCKED,
        PROJECTION_FAILED,
        TASK_NOT_RESOLVABLE_BY_HAND,
        THREAD_CHANGED,
    )
    from domain.escalation import StepNotice
    from domain.notices import NoticeInput
    from domain.tasks import (
        AssignTaskInput,
        CloseTaskInput,
        PostponeTaskInput,
        ResolvedBy,
        Task,
    )
    from domain.waiting import Timer, TimerKind
    from workflows.notices import start_notice
    from workflows.retry import PROJECTION_REPAIR_RETRY
    from workflows.taskbook import TaskBook, check_open_and_resolvable_by_hand


class Outbox(NamedTuple):
    """Messages for other workflows: where they wait (``items``, a list in the state, carried
    over continue-as-new), the projection field that carries them to the projection activity
    (``carried_as``), and how one is sent on its own (``send``). An item leaves the list only
    once delivered: by the projection that carried it (its ``ProjectionResult.sent``) or by
    ``send``."""

    carried_as: str
    items: Callable[[], list[Any]]
    send: Callable[[Any], Awaitable[None]]


_NEVER_PUBLISHED = object()
LADDER_OUTBOX = "ladder"
_TASK_ATTRIBUTES = (sa.OPEN_TASK_TYPES, sa.OVERDUE_TASK_COUNT, sa.NEXT_DEADLINE)


class TaskOwnerWorkflow:
    """Mixin for workflows that own tasks. Not a workflow by itself."""

    state: Any  # a pydantic state with version, projected_version and book (a TaskBookState)
    book: TaskBook
    # Why the read model cannot be written, while it cannot (see ``_await_projection_repair``).
    # Not part of the state: it follows from the activity failure recorded in history.
    projection_failure: str | None = None
    _projection_retry_requested = False

    def _init_book(self, workflow_id: str) -> None:
        self.book = TaskBook(self.state.book, workflow_id=workflow_id, touch=self._touch)
        # Workflow memory, not state: rebuilt by replay. Search attribute name -> its value as
        # this run last upserted it, or as the run started with it (set at start, or carried
        # over continue-as-new); None if unset. Only a value that differs is upserted.
        self._published: dict[str, Any] = {key.name: None for key in sa.ALL}
        self._published.update(
            (pair.key.name, pair.value) for pair in workflow.info().typed_search_attributes
        )
        self._unpublished: dict[str, SearchAttributeUpdate[Any]] = {}
        self._alarm: asyncio.Task[None] | None = None  # the one wake-up timer, while it runs
        self._alarm_at: datetime | None = None
        # An outbox's coroutine, while the outbox holds something (``_queue``): a cached
        # workflow with nothing to send keeps no idle task waiting for it.
        self._senders: dict[str, asyncio.Task[None]] = {}
        self._draining: set[str] = set()  # outboxes whose coroutine is sending an item
        self._carrying: set[str] = set()  # outboxes the running projection carries
        self._outbox_error: BaseException | None = None

    # -- the loop -----------------------------------------------------------------------------
    async def _serve(self) -> None:
        """Run until ``_finished``; continue-as-new when history grows long."""
        for outbox in self._all_outboxes():
            if outbox.items():  # carried over continue-as-new
                self._start_sender(outbox)
        if not self._dirty():  # continued as new: publish once (a change publishes when written)
            self._publish()
        while True:
            self._raise_outbox_error()
            await self._advance()
            if self._dirty():
                if await self._write_through():
                    self._publish()
                else:
                    await self._await_projection_repair()
                continue
            if self._finished() or self._should_continue_as_new():
                # Let running handlers (an update that just closed the case) answer first and
                # the outboxes empty (nothing waiting to be sent is ever dropped), and the
                # notices be handed over; a handler that changes state meanwhile sends the loop
                # round again.
                finishing = self._finished()

                def busy(finishing: bool = finishing) -> bool:
                    return (
                        not workflow.all_handlers_finished()
                        or self._sending()
                        or self._notifying(finishing)
                    )

                await workflow.wait_condition(
                    lambda: not busy() or self._dirty() or self._outbox_error is not None
                )
                self._raise_outbox_error()
                if self._dirty() or busy():
                    continue
                if self._finished():
                    return
                self._continue_as_new()
            await self._sleep_until_change_or_deadline()

    async def _write_through(self) -> bool:
        """The projection, in the workflow task that made the change; it gives the tasks it
        writes the deadlines they need (so no task is ever shown without its deadline), one
        local activity for both. False when the projection is blocked."""
        if self.book.needs_deadlines() and self.state.projected_version >= self.state.version:
            self._touch()  # nothing else changed: project anyway, for the deadlines
        return await self._project_or_block()

    # -- outboxes: signals to other workflows, with the projection or beside it --------------------
    def _outboxes(self) -> list[Outbox]:
        """Hook: the workflow's outboxes. What they hold goes with the next projection
        (``_carried``, ``_delivered``): one local activity writes the read model and tells the
        other workflows, in the workflow task that made the change. What it did not deliver
        (the other workflow's server call failed) is sent in order by the outbox's own
        coroutine, with its own retries, beside the main loop: an update never waits for
        another workflow's retries."""
        return []

    def _all_outboxes(self) -> list[Outbox]:
        """The workflow's outboxes and the ladder's: the ladder steps that fired
        (``TaskBookState.notices``), each handed to a ``NoticeWorkflow`` of its own by their
        own coroutine beside the main loop (``_send_notice``). A step leaves the outbox once
        its child started, so neither the loop nor finishing nor continue-as-new ever waits on
        SMTP. No projection carries them (``ProjectionResult.sent`` never names it)."""
        return [
            *self._outboxes(),
            Outbox(LADDER_OUTBOX, lambda: self.book.state.notices, self._send_notice),
        ]

    async def _send_notice(self, notice: StepNotice) -> None:
        """Hand one fired step's e-mail to its ``NoticeWorkflow`` (workflows/notices.py), which
        composes it from the read model (none once the task is solved there) and sends it. A
        task no longer open here (solved, dismissed) sends none."""
        if any(task.id == notice.task_id for task in self.book.open_tasks()):
            await start_notice(NoticeInput(notice=notice))

    def _queue(self, carried_as: str, item: Any) -> None:
        """Put ``item`` at the end of the outbox ``carried_as``: the next projection carries it,
        or the outbox's coroutine sends it (started here if it is not running)."""
        outbox = next(o for o in self._all_outboxes() if o.carried_as == carried_as)
        outbox.items().append(item)
        self._start_sender(outbox)

    def _start_sender(self, outbox: Outbox) -> None:
        if outbox.carried_as not in self._senders:
            self._senders[outbox.carried_as] = asyncio.create_task(self._drain(outbox))

    def _sending(self) -> bool:
        return any(outbox.items() for outbox in self._all_outboxes())

    def _carried(self) -> dict[str, list[Any]]:
        """What the projection about to start carries, by ``Outbox.carried_as``: everything
        queued, of each outbox whose coroutine is not sending an item (it owns that outbox's
        head until it is sent)."""
        carried = {
            outbox.carried_as: list(outbox.items())
            for outbox in self._outboxes()
            if outbox.carried_as not in self._draining
        }
        self._carrying = {name for name, items in carried.items() if items}
        return carried

    def _delivered(self, sent: dict[str, int]) -> None:
        """The projection delivered the first ``sent[name]`` items it carried of each outbox:
        they leave it. Nothing else removed any meanwhile (an outbox's coroutine does not send
        while a projection carries it), so they are still its first items."""
        for outbox in self._all_outboxes():
            del outbox.items()[: sent.get(outbox.carried_as, 0)]
        self._carrying = set()

    def _left_to_outbox(self, outbox: Outbox) -> bool:
        """No projection carries the outbox's items or is due to (or none can run: it is
        blocked), so its coroutine sends them."""
        return outbox.carried_as not in self._carrying and (
            not self._dirty() or self.projection_failure is not None
        )

    async def _drain(self, outbox: Outbox) -> None:
        """Send the outbox's items the projections leave to it, in order; return once it is
        empty (a projection delivered the rest), until ``_queue`` starts it again."""
        try:
            while True:
                await workflow.wait_condition(
                    lambda: not outbox.items() or self._left_to_outbox(outbox)
                )
                if not outbox.items():
                    return
                self._draining.add(outbox.carried_as)
                try:
                    await outbox.send(outbox.items()[0])
                finally:
                    self._draining.discard(outbox.carried_as)
                outbox.items().pop(0)
        except Exception as error:  # handed to the main loop, which fails the workflow task
            self._outbox_error = error
        finally:
            del self._senders[outbox.carried_as]

    def _raise_outbox_error(self) -> None:
        if self._outbox_error is not None:
            raise self._outbox_error

    async def _project_or_block(self) -> bool:
        """Project; False when the projection failed for good (activities/projection.py gave
        up on an error that retrying cannot fix)."""
        try:
            await self._project()
        except (ActivityError, ApplicationError) as exc:
            self._carrying = set()  # what it carried is the outboxes' to send again
            # The projection is a local activity: temporalio 1.35 hands the workflow its
            # ApplicationError itself, where a regular activity's comes as ActivityError's
            # cause (tests/api/test_faults.py shows the local case). Either is understood.
            cause = exc.cause if isinstance(exc, ActivityError) else exc
            if not (isinstance(cause, ApplicationError) and cause.type == PROJECTION_FAILED):
                raise
            self.projection_failure = cause.message
            return False
        if self.projection_failure is not None:
            self.projection_failure = None
            self._upsert([sa.PROJECTION_BLOCKED.value_set(False)])  # published with the rest
            workflow.logger.info("projection repaired; the workflow takes changes again")
        return True

    async def _await_projection_repair(self) -> None:
        """A change cannot reach the read model. Rather than retry it forever in silence (every
        later update would hang behind it), tell ops (a log line, the ``ProjectionBlocked``
        search attribute, the current details), refuse new updates (``RefuseWhileBlocked``),
        and try again when ops send ``retry_projection`` or after ``PROJECTION_REPAIR_RETRY``.
        Updates already waiting for this projection keep waiting (the API answers them 503
        ``workflow_busy``) and complete once it is written, so a change is never half-done."""
        workflow.logger.error(
            "projection failed for good; refusing changes until repaired: %s",
            self.projection_failure,
        )
        self._upsert([sa.PROJECTION_BLOCKED.value_set(True)])
        self._flush_attributes()
        workflow.set_current_details(
            f"**Projection blocked**: {self.projection_failure}\n\n"
            f"The read model cannot be written, so the workflow refuses changes "
            f"(503 projection_blocked). Projected version {self.state.projected_version} "
            f"of {self.state.version}. Fix the cause, then signal `retry_projection` "
            f"(it is tried again by itself every {PROJECTION_REPAIR_RETRY}); "
            f"see docs/operations.md, 'A projection is blocked'."
        )
        self._projection_retry_requested = False
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self._projection_retry_requested,
                timeout=PROJECTION_REPAIR_RETRY,
                timeout_summary="retry the blocked projection",
            )

    @workflow.signal
    def retry_projection(self) -> None:
        """Ops: the cause of a blocked projection is fixed; write the read model again now."""
        self._projection_retry_requested = True

    def refuse_while_blocked(self) -> None:
        """Raise for a new update while the read model cannot be written (``projection_failure``):
        it could not be projected either, and would hang its caller."""
        if self.projection_failure is not None:
            raise ApplicationError(
                "this case's read model cannot be written at the moment, so it takes no "
                "changes; ops have been alerted. Retry later.",
                type=PROJECTION_BLOCKED,
                non_retryable=True,
            )

    def _dirty(self) -> bool:
        return bool(
            self.state.version > self.state.projected_version or self.book.needs_deadlines()
        )

    def _should_continue_as_new(self) -> bool:
        """The server suggests it, or the history reached the workflow's own limit (if set)."""
        info = workflow.info()
        limit = getattr(self.state, "history_limit", None)
        return info.is_continue_as_new_suggested() or bool(
            limit and info.get_current_history_length() >= limit
        )

    def _wakeups(self) -> list[Timer]:
        """Hook: other moments (besides task deadlines) the loop must wake at, with a summary
        naming them for the Temporal UI. ``_advance`` handles them when they are due."""
        return []

    def _timers(self) -> list[Timer]:
        """Every moment the loop wakes at that is still to come: the hook's, the first task
        deadline and the first ladder step (the alarm's, and what ``NextStepAt`` shows)."""
        now = workflow.now()
        # A moment ``_advance`` left in the past would wake the loop at once, forever: skip it.
        timers = [timer for timer in self._wakeups() if timer.at > now]
        next_task = self.book.next_deadline()
        if next_task is not None and next_task.deadline is not None:
            timers.append(
                Timer(
                    next_task.deadline,
                    TimerKind.TASK_DEADLINE,
                    f"{next_task.type.value} deadline ({next_task.id})",
                )
            )
        next_step = self.book.next_step()
        if next_step is not None:
            when, task, step = next_step
            timers.append(
                Timer(when, TimerKind.LADDER_STEP, f"{task.type.value} {step.name} ({task.id})")
            )
        return timers

    async def _sleep_until_change_or_deadline(self) -> None:
        """Wait for a change or the earliest moment. One timer runs at a time and is left
        running while no earlier moment comes up: a moment that moved later (a task solved or
        postponed) costs one early wake-up later instead of a cancelled and restarted timer
        now, in the workflow task the user waits for."""
        now = workflow.now()
        moments = self._timers()
        due = False
        if moments:
            first = min(moments, key=lambda timer: timer.at)
            when, summary = first.at, first.summary
            if when <= now:
                due = True  # a deadline that passed while the loop was busy: handled below
            elif self._alarm is None or self._alarm_at is None or when < self._alarm_at:
                if self._alarm is not None:
                    self._alarm.cancel()
                self._alarm_at = when
                self._alarm = asyncio.create_task(workflow.sleep(when - now, summary=summary))
        if not due:
            alarm = self._alarm
            await workflow.wait_condition(
                lambda: (
                    self._dirty()
                    or self._should_continue_as_new()
                    or (alarm is not None and alarm.done())
                    or self._outbox_error is not None
                )
            )
            if alarm is not None and alarm.done():
                self._alarm = self._alarm_at = None
        if self.book.mark_overdue(workflow.now()):
            workflow.logger.info("tasks became overdue")
        for notice in self.book.fire_due_steps(workflow.now()):
            workflow.logger.info("ladder step %s of task %s fired", notice.step, notice.task_id)
            self._queue(LADDER_OUTBOX, notice)

    async def _settled(self) -> None:
        """Wait until everything changed so far is in the read model (read-your-writes)."""
        # Wait for a fully settled state, not just the version seen on entry: a deadline filled
        # in after entry bumps the version and must be projected before the caller reads.
        await workflow.wait_condition(lambda: not self._dirty())

    def _touch(self) -> None:
        self.state.version += 1

    def _upsert(self, updates: list[SearchAttributeUpdate[Any]]) -> None:
        """Queue search attribute values; ``_publish`` sends them (``_flush_attributes``)."""
        for update in updates:
            self._unpublished[update.key.name] = update

    def _flush_attributes(self) -> None:
        """One upsert of the queued values that differ from the run's (``_published``): each
        upsert is a history event, and each value one the worker keeps for as long as the run
        stays cached."""
        changed = [
            update
            for name, update in self._unpublished.items()
            if self._published.get(name, _NEVER_PUBLISHED) != update.value
        ]
        self._unpublished.clear()
        if changed:
            workflow.upsert_search_attributes(changed)
            for update in changed:
                self._published[update.key.name] = update.value

    def _publish_task_attributes(self) -> None:
        """The task attributes, all three together; none while the workflow has no open task
        and has never shown one (absent attributes say as much)."""
        next_task = self.book.next_deadline()
        deadline = next_task.deadline if next_task is not None else None
        open_types = self.book.open_types()
        overdue = self.book.overdue_count()
        shown = any(self._published[key.name] is not None for key in _TASK_ATTRIBUTES)
        if shown or open_types or overdue or deadline is not None:
            self._upsert(
                [
                    sa.OPEN_TASK_TYPES.value_set(open_types),
                    sa.OVERDUE_TASK_COUNT.value_set(overdue),
                    sa.NEXT_DEADLINE.value_set(deadline)
                    if deadline is not None
                    else sa.NEXT_DEADLINE.value_unset(),
                ]
            )
        self._flush_attributes()

    def _task_lines(self) -> str:
        lines = [
            f"- {t.type.value} due {t.deadline:%Y-%m-%d %H:%M} UTC"
            + (" **overdue**" if t.overdue_since else "")
            if t.deadline
            else f"- {t.type.value}"
            for t in self.book.open_tasks()
        ]
        last = self.book.last_fired()
        fired = (
            f"\n\nLast ladder step: **{last[1].step}** of {last[0].type.value} ({last[0].id}) "
            f"at {last[1].at:%Y-%m-%d %H:%M} UTC"
            if last is not None
            else ""
        )
        return ("\n".join(lines) or "- none") + fired

    # -- updates applied once (workflows/once.py) -----------------------------------------------
    def _update_applied(self, update_id: str) -> update_ids.AppliedUpdate | None:
        return update_ids.recall(self.state.applied_updates, update_id, workflow.now())

    def _remember_update(self, update_id: str, result: Any) -> None:
        result_id = getattr(result, "id", None)
        update_ids.remember(
            self.state.applied_updates,
            update_id,
            str(result_id) if result_id else None,
            workflow.now(),
        )

    def _recall_update(self, name: str, arg: Any, result_id: str | None) -> Any:
        """The answer to an update applied before (by an earlier run): task updates answer with
        the task; ``_recall`` answers the owner's own updates."""
        if name in ("postpone_task", "assign_task", "close_task"):
            return self.book.get(arg.task_id)
        return self._recall(name, arg, result_id)

    def _recall(self, name: str, arg: Any, result_id: str | None) -> Any:
        raise NotImplementedError

    # -- hooks --------------------------------------------------------------------------------
    async def _advance(self) -> None:
        """React to changes (raise/solve tasks, move status). Must be idempotent."""

    async def _project(self) -> None:
        raise NotImplementedError

    def _publish(self) -> None:
        self._publish_task_attributes()

    def _finished(self) -> bool:
        return False

    def _notifying(self, finishing: bool) -> bool:
        """Hook: a notice is being handed over (workflows/notices.py), or, when the workflow is
        about to complete (``finishing``), one is still pending: the run waits for it. A
        pending notice continues as new with the state."""
        return False

    def _continue_as_new(self) -> None:
        raise NotImplementedError

    # -- task updates, shared by every owner --------------------------------------------------
    @workflow.update
    async def postpone_task(self, input: PostponeTaskInput) -> Task:
        """Set a new (future) deadline; the original deadline is kept and the timer moves."""
        task = self.book.get_open(input.task_id)
        self.book.postpone(
            task, input.deadline, now=workflow.now(), reason=input.reason, user_id=input.user_id
        )
        await self._settled()
        return task

    @postpone_task.validator
    def validate_postpone_task(self, input: PostponeTaskInput) -> None:
        self.book.get_open(input.task_id)
        if input.deadline <= workflow.now():
            raise ApplicationError(
                "the new deadline must be later than now", type=INVALID_DEADLINE, non_retryable=True
            )

    @workflow.update
    async def assign_task(self, input: AssignTaskInput) -> Task:
        """Give a task to a user of the owning organisation (the API checks membership)."""
        task = self.book.get_open(input.task_id)
        self.book.assign(task, input.assignee_id)
        await self._settled()
        return task

    @assign_task.validator
    def validate_assign_task(self, input: AssignTaskInput) -> None:
        self.book.get_open(input.task_id)

    @workflow.update
    async def close_task(self, input: CloseTaskInput) -> Task:
        """Close a Generic task, or mark a mark-as-done task (e.g. MoreInfoNeeded) as done."""
        task = self.book.get_open(input.task_id)
        self.book.solve(
            task,
            now=workflow.now(),
            by=ResolvedBy(
                kind="user", user_id=input.user_id, reason=input.reason or "closed by hand"
            ),
        )
        await self._on_closed_by_hand(task)
        await self._settled()
        return task

    @close_task.validator
    def validate_close_task(self, input: CloseTaskInput) -> None:
        check_open_and_resolvable_by_hand(self.book.get_open(input.task_id))

    @workflow.update
    async def dismiss_chat_task(self, input: DismissChatTaskInput) -> Task:
        """The nightly cleanup found no reply is expected: the chat task is solved, with why."""
        task = self.book.get_open(input.task_id)
        self.book.solve(
            task,
            now=workflow.now(),
            by=ResolvedBy(kind="system", reason=f"{CLEANUP_REASON}{input.reason}"),
        )
        await self._settled()
        return task

    @dismiss_chat_task.validator
    def validate_dismiss_chat_task(self, input: DismissChatTaskInput) -> None:
        task = self.book.get_open(input.task_id)
        if task.type not in CHAT_TASKS.values():
            raise ApplicationError(
                f"only chat tasks are dismissed by the cleanup, not {task.type.value}",
                type=TASK_NOT_RESOLVABLE_BY_HAND,
                non_retryable=True,
            )
        # The decision read the thread up to seen_seq: a message since (in any of this
        # workflow's threads, also one not yet projected) may need an answer.
        last_seq = getattr(self.state, "message_seq", 0)
        if input.seen_seq is not None and last_seq > input.seen_seq:
            raise ApplicationError(
                "a message came after the cleanup read the thread; the task stays open",
                type=THREAD_CHANGED,
                non_retryable=True,
            )

    async def _on_closed_by_hand(self, task: Task) -> None:
        """Hook: a task resolved by hand may change the owner's state."""
