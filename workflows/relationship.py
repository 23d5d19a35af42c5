"""``RelationshipWorkflow``: one per creditor-partner pair (``relationship-{creditorId}-{partnerId}``).

A case's projection writes the pair's row when the case first links it; the API starts this
workflow with the pair's first general-chat message (update-with-start, from that row:
docs/decisions/0015). It owns their general chat and its NewMessage / ReplyToChat tasks, which
belong to no case.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.projection import ProjectionActivities
    from domain.chat import (
        MAX_ATTACHMENTS_PER_MESSAGE,
        ChatMessage,
        PostMessageInput,
        RelationshipProjection,
        RelationshipState,
        RelationshipWorkflowInput,
        ThreadType,
        relationship_id,
    )
    from domain.enums import Party
    from domain.errors import NOT_A_PARTY, VALIDATION_FAILED
    from domain.ids import relationship_workflow_id
    from domain.notices import PartnerBurst, PartnerWroteNotice
    from domain.tasks import task_id
    from workflows.base import TaskOwnerWorkflow
    from workflows.chat import ROLE_OF, check_body, message_of, route_message
    from workflows.notices import PartnerBursts
    from workflows.retry import LOCAL_RETRY_THRESHOLD, PROJECTION_RETRY, PROJECTION_TIMEOUT


@workflow.defn
class RelationshipWorkflow(PartnerBursts, TaskOwnerWorkflow):
    """The general chat of one creditor and one partner (and the creditor's e-mail when the
    partner writes in it: workflows/notices.py, ``PartnerBursts``)."""

    @workflow.init
    def __init__(self, input: RelationshipWorkflowInput) -> None:
        self.state = input.state or RelationshipState(
            creditor=input.creditor, partner=input.partner, linked_at=input.linked_at
        )
        self._init_book(relationship_workflow_id(self.state.creditor.id, self.state.partner.id))
        self._init_bursts()

    @property
    def pair_id(self) -> UUID:
        return relationship_id(self.state.creditor.id, self.state.partner.id)

    @workflow.run
    async def run(self, input: RelationshipWorkflowInput) -> None:
        """Serve the pair's chat for as long as they work together (continuing as new)."""
        if self.state.linked_at is None:  # started without the row's time
            self.state.linked_at = workflow.now()
            self._touch()
        self._resume_bursts()
        await self._serve()

    @workflow.update
    async def post_message(self, input: PostMessageInput) -> ChatMessage:
        """Record a message in the general chat and route its tasks."""
        state = self.state
        now = workflow.now()
        state.message_seq += 1
        message = message_of(
            input,
            id=task_id(self.book.workflow_id, f"message#{state.message_seq}"),
            seq=state.message_seq,
            now=now,
            thread_type=ThreadType.GENERAL,
            partner_id=state.partner.id,
            relationship_id=self.pair_id,
        )
        state.pending_messages.append(message)
        self._burst_message(message)
        sender_name = (state.creditor if input.party is Party.CREDITOR else state.partner).name
        route_message(
            self.book,
            message,
            sender=input.party,
            recipient=state.partner if input.party is Party.CREDITOR else state.creditor,
            now=now,
            title=f"New message from {sender_name}",
            user_id=input.user_id,
        )
        self._touch()
        await self._settled()
        return message

    @post_message.validator
    def validate_post_message(self, input: PostMessageInput) -> None:
        expected = self.state.creditor if input.party is Party.CREDITOR else self.state.partner
        if input.org_id != expected.id or input.party not in ROLE_OF:
            raise ApplicationError(
                "only the creditor and the partner of this relationship write in its chat",
                type=NOT_A_PARTY,
                non_retryable=True,
            )
        check_body(input.body)
        if len(input.attachment_ids) > MAX_ATTACHMENTS_PER_MESSAGE:
            raise ApplicationError(
                f"a message has at most {MAX_ATTACHMENTS_PER_MESSAGE} attachments",
                type=VALIDATION_FAILED,
                non_retryable=True,
            )

    def _burst_notice(self, burst: PartnerBurst) -> PartnerWroteNotice:
        return PartnerWroteNotice(
            relationship_id=self.pair_id,
            first_seq=burst.first_seq,
            last_seq=burst.last_seq,
            last_message_id=burst.last_message_id,
        )

    def _recall(self, name: str, arg: Any, result_id: str | None) -> Any:
        """post_message applied by an earlier run (workflows/once.py)."""
        return message_of(
            arg,
            id=result_id or "",
            seq=0,
            now=workflow.now(),
            thread_type=ThreadType.GENERAL,
            partner_id=self.state.partner.id,
            relationship_id=self.pair_id,
        )

    @workflow.query
    def get_state(self) -> RelationshipState:
        return self.state

    async def _project(self) -> None:
        state = self.state
        if state.projected_version < state.version:  # the main loop comes back
            version = state.version
            messages = list(state.pending_messages)
            tasks, events = self.book.unprojected()
            assert state.linked_at is not None
            result = await workflow.execute_local_activity_method(
                ProjectionActivities.project_relationship,
                RelationshipProjection(
                    relationship_id=self.pair_id,
                    version=version,
                    creditor_id=state.creditor.id,
                    partner_id=state.partner.id,
                    linked_at=state.linked_at,
                    messages=messages,
                    tasks=tasks,
                    events=events,
                ),
                start_to_close_timeout=PROJECTION_TIMEOUT,
                retry_policy=PROJECTION_RETRY,
                local_retry_threshold=LOCAL_RETRY_THRESHOLD,
                summary=f"project relationship v{version}",
            )
            self.book.given(result, now=workflow.now())
            del state.pending_messages[: len(messages)]
            self.book.projected(tasks, events)
            state.projected_version = max(state.projected_version, version)

    def _publish(self) -> None:
        self._publish_task_attributes()
        workflow.set_current_details(
            f"**Relationship** {self.state.creditor.name or self.state.creditor.id} ↔ "
            f"{self.state.partner.name or self.state.partner.id}\n\n"
            f"Messages: {self.state.message_seq}\n\nOpen tasks:\n{self._task_lines()}"
        )

    def _continue_as_new(self) -> None:
        workflow.continue_as_new(
            RelationshipWorkflowInput(
                creditor=self.state.creditor, partner=self.state.partner, state=self.state
            )
        )
