"""Notices by e-mail from the workflows that hear of what they are about (domain/notices.py).

``Debounced`` is the rule's durable timer, in the workflow that already runs: a coroutine beside
the main loop sleeps until the rule's moment, which moves later with each new occurrence (a
partner message, a case without a bank account). It keeps its one timer running when the moment
moves later and sleeps again when it wakes early, so a message in a burst adds no history event
(only the first one starts the timer) and no workflow task. When the moment has passed it calls
the rule's ``fire``, which hands the notice to ``start_notice``: a child ``NoticeWorkflow``
(abandoned, so it outlives a case that completes or continues as new) composes the e-mail from
the read model and sends it with ``workflows.mail.send``. The owner's state holds the rule's
data until then, carried over continue-as-new; the owner does not continue as new or complete
while a notice is being handed over (``Debounced.firing``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from domain.chat import ChatMessage, ChatRole
    from domain.mail import Email
    from domain.notices import (
        COMPOSE_EMAIL,
        COMPOSE_TIMEOUT,
        NoticeInput,
        PartnerBurst,
        PartnerWroteNotice,
        notice_workflow_id,
        thread_key,
    )
    from workflows.mail import send


class Debounced:
    """A moment that may move later, and what to do once it has passed.

    ``due`` answers the moment (None: nothing pending); ``fire`` runs once it has passed and
    must leave ``due`` None or later (it takes the pending data out of the state). ``arm``
    starts the coroutine if it is not running (from a handler, or from ``run`` after
    continue-as-new). A moment that moves *earlier* (a case that finished) wakes it at once."""

    def __init__(
        self, due: Callable[[], datetime | None], fire: Callable[[], Awaitable[None]], summary: str
    ) -> None:
        self._due = due
        self._fire = fire
        self._summary = summary
        self._task: asyncio.Task[None] | None = None
        self.firing = False

    def arm(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            while (due := self._due()) is not None:
                now = workflow.now()
                if due > now:
                    # A timer of its own, left running when the moment moves later (no
                    # TimerCanceled in the task of a user action); woken early only if the
                    # moment comes earlier.
                    with contextlib.suppress(TimeoutError):
                        await workflow.wait_condition(
                            lambda: (moved := self._due()) is not None and moved < due,
                            timeout=due - now,
                            timeout_summary=self._summary,
                        )
                    continue
                self.firing = True
                try:
                    await self._fire()
                finally:
                    self.firing = False
        finally:
            self._task = None


async def start_notice(notice: NoticeInput) -> None:
    """Hand ``notice`` to its ``NoticeWorkflow`` (returns once it started). A notice already
    started (by this workflow before a lost task, or a run before continue-as-new) is left to
    it; the e-mail's idempotency key keeps a repeat from sending twice anyway."""
    key = notice.notice.idempotency_key
    try:
        await workflow.start_child_workflow(
            NoticeWorkflow.run,
            notice,
            id=notice_workflow_id(key),
            parent_close_policy=ParentClosePolicy.ABANDON,
            static_summary=key,
        )
    except WorkflowAlreadyStartedError:
        workflow.logger.info("notice %s was started before", notice_workflow_id(key))


@workflow.defn(name="Notice")
class NoticeWorkflow:
    """Compose a notice's e-mails from the read model (one per at most 50 recipients, all with
    the notice's idempotency key) and send them; nothing to send (no recipient, nothing left
    to tell) ends it quietly."""

    @workflow.run
    async def run(self, input: NoticeInput) -> int:
        emails = await workflow.execute_activity(
            COMPOSE_EMAIL,
            input,
            start_to_close_timeout=COMPOSE_TIMEOUT,
            retry_policy=RetryPolicy(maximum_interval=COMPOSE_TIMEOUT),
            result_type=list[Email],
            summary=input.notice.kind,
        )
        sent = 0
        for email in emails:
            sent += (await send(email)).sent
        return sent


class PartnerBursts:
    """Mixin of the thread owners (case, relationship): the creditor's e-mail when a partner
    writes, 10 minutes after the last partner message of a burst (domain/notices.py). The
    owner's state has ``partner_burst``; the owner calls ``_init_bursts`` in its init,
    ``_resume_bursts`` when it runs (a burst carried over continue-as-new) and
    ``_burst_message`` for each message it records."""

    state: Any

    def _init_bursts(self) -> None:
        self._bursts = Debounced(
            self._burst_due, self._burst_over, summary="partner messages: e-mail the creditor"
        )

    def _resume_bursts(self) -> None:
        if self.state.partner_burst is not None:
            self._bursts.arm()

    def _burst_message(self, message: ChatMessage) -> None:
        """A partner message starts a burst or moves its moment; a creditor message that
        answers every thread of the burst ends it without an e-mail."""
        state = self.state
        thread = thread_key(message.thread_type, message.partner_id)
        if message.role is ChatRole.PARTNER:
            state.partner_burst = PartnerBurst.partner_wrote(
                state.partner_burst,
                seq=message.seq,
                message_id=message.id,
                at=message.created_at,
                thread=thread,
            )
            self._bursts.arm()  # the first of a burst starts the timer; the rest add nothing
        elif state.partner_burst is not None and state.partner_burst.answered(thread):
            state.partner_burst = None

    def _burst_due(self) -> datetime | None:
        burst: PartnerBurst | None = self.state.partner_burst
        if burst is None:
            return None
        return burst.last_at if self._burst_ends_now() else burst.due

    def _burst_ends_now(self) -> bool:
        """Hook: no more messages can come (a finished case's chat is closed): send now."""
        return False

    def _burst_notice(self, burst: PartnerBurst) -> PartnerWroteNotice:
        raise NotImplementedError

    async def _burst_over(self) -> None:
        burst: PartnerBurst = self.state.partner_burst
        # Out of the state first: a message while the notice starts begins the next burst.
        self.state.partner_burst = None
        await start_notice(NoticeInput(notice=self._burst_notice(burst)))

    def _notifying(self, finishing: bool) -> bool:
        return self._bursts.firing or (finishing and self.state.partner_burst is not None)


__all__ = ["Debounced", "NoticeWorkflow", "PartnerBursts", "start_notice"]
