"""Chat of ``CaseWorkflow``: the case's threads (Invoice, Lead, Invoice Questions Chat)."""

from __future__ import annotations

from uuid import UUID

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.accounts import OrgRef
    from domain.cases import (
        LEAD_THREAD_QUOTES,
        thread_open,
    )
    from domain.chat import (
        MAX_ATTACHMENTS_PER_MESSAGE,
        ChatMessage,
        PostMessageInput,
        ThreadType,
        thread_of,
    )
    from domain.enums import CaseStatus, Party
    from domain.notices import PartnerBurst, PartnerWroteNotice
    from domain.tasks import ResolvedBy, TaskType, task_id
    from domain.transitions import FINISHED
    from workflows.case_core import (
        CaseCore,
        failed,
        invalid_transition,
        not_a_party,
        org_name,
    )
    from workflows.chat import check_body, message_of, route_message
    from workflows.notices import PartnerBursts


class ChatHandlers(PartnerBursts, CaseCore):
    """Messages in the case's threads and the chat tasks they raise and solve, and the
    creditor's e-mail when a partner writes (workflows/notices.py, ``PartnerBursts``)."""

    @workflow.update
    async def post_message(self, input: PostMessageInput) -> ChatMessage:
        """A message in one of the case's threads: recorded, the other party gets a chat task,
        the sender's own is solved; a creditor answering a hold that waits for them resumes it."""
        record, state = self.record, self.state
        now = workflow.now()
        partner = self._thread_partner(input)
        state.message_seq += 1
        message = message_of(
            input,
            id=task_id(self.book.workflow_id, f"message#{state.message_seq}"),
            seq=state.message_seq,
            now=now,
            thread_type=input.thread_type,
            partner_id=partner.id,
            case_id=record.case_id,
        )
        state.pending_messages.append(message)
        self._burst_message(message)
        sender = record.creditor if input.party is Party.CREDITOR else partner
        route_message(
            self.book,
            message,
            sender=input.party,
            recipient=partner if input.party is Party.CREDITOR else record.creditor,
            now=now,
            title=f"{input.thread_type.value}: {org_name(sender)} wrote on case {record.case_number}",
            user_id=input.user_id,
        )
        if (
            input.party is Party.CREDITOR
            and input.thread_type is ThreadType.INVOICE_CHAT
            and record.status is CaseStatus.ON_HOLD
            and record.waiting_for is Party.CREDITOR
        ):
            status, sub_status = self._resume_target()
            self._change(
                status,
                sub_status,
                changed_by=str(input.user_id),
                note="Information provided",
                user_id=input.user_id,
                org_id=input.org_id,
            )
        self._touch()
        await self._settled()
        return message

    @post_message.validator
    def validate_post_message(self, input: PostMessageInput) -> None:
        self._thread_partner(input)
        check_body(input.body)
        if len(input.attachment_ids) > MAX_ATTACHMENTS_PER_MESSAGE:
            raise failed(f"a message has at most {MAX_ATTACHMENTS_PER_MESSAGE} attachments")

    def _burst_ends_now(self) -> bool:
        return self.record.status in FINISHED  # its chat is closed: no more messages come

    def _burst_notice(self, burst: PartnerBurst) -> PartnerWroteNotice:
        return PartnerWroteNotice(
            case_id=self.record.case_id,
            first_seq=burst.first_seq,
            last_seq=burst.last_seq,
            last_message_id=burst.last_message_id,
        )

    def _thread_partner(self, input: PostMessageInput) -> OrgRef:
        """The partner side of the thread a message goes to; refuses senders who are not in it."""
        record = self.record
        if input.party is Party.CREDITOR and input.org_id != record.creditor.id:
            raise not_a_party("only the case's creditor writes on its creditor side")
        if record.status in FINISHED:
            raise invalid_transition(
                "the case has ended and its chat is closed; write in the relationship chat"
            )
        if input.thread_type is ThreadType.GENERAL:
            raise failed("the general chat belongs to the relationship, not to a case")
        if input.thread_type is ThreadType.INVOICE_CHAT:
            partner = record.partner
            if partner is None:
                raise invalid_transition("the Invoice Chat opens once a partner has the case")
            if input.party is Party.PARTNER and partner.id != input.org_id:
                raise not_a_party("only the partner working the case writes in its Invoice Chat")
            return partner
        partner_id = input.org_id if input.party is Party.PARTNER else input.partner_id
        if partner_id is None:
            raise failed(f"a {input.thread_type.value} message names the partner (partnerId)")
        partner = self._open_thread(input.thread_type, partner_id)
        if partner is None:
            allowed = LEAD_THREAD_QUOTES[input.thread_type]
            raise not_a_party(
                f"the {input.thread_type.value} of this case is open to partners whose quote is "
                f"{' or '.join(s.value.lower() for s in allowed)}"
            )
        return partner

    def _open_thread(self, thread_type: ThreadType, partner_id: UUID) -> OrgRef | None:
        """The partner of a case thread that is open to both its parties, or None."""
        record = self.record
        if not thread_open(
            status=record.status,
            case_partner_id=record.partner_id,
            quotes=record.quotes,
            thread_type=thread_type,
            partner_id=partner_id,
        ):
            return None
        if thread_type is ThreadType.INVOICE_CHAT:
            return record.partner
        return next(q.partner for q in record.quotes if q.partner.id == partner_id)

    def _close_stale_chat_tasks(self) -> None:
        """A thread that closed to one of its parties (a rejection, another quote picked, the
        round over) takes its open chat tasks with it: nobody could answer them any more."""
        for task in self.book.open_tasks():
            if task.type not in (TaskType.NEW_MESSAGE, TaskType.REPLY_TO_CHAT):
                continue
            thread, partner_id = thread_of(task.key)
            if self._open_thread(thread, partner_id) is None:
                self.book.solve(
                    task,
                    now=workflow.now(),
                    by=ResolvedBy(kind="system", reason="the thread is closed"),
                )
