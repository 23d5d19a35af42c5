"""What every part of ``CaseWorkflow`` shares: the case's state and its status changes.

``CaseCore`` is not a workflow. ``CaseWorkflow`` (workflows/case.py) combines it with the handler
groups in ``case_quotes``, ``case_aftercare`` and ``case_chat``; every status change after intake
goes through ``CaseCore._change``, checked first by ``CaseCore._check_change``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain import search_attributes as sa
    from domain.accounts import AccountSignal, AccountSignalName, CaseAccountEvent, OrgRef
    from domain.cases import (
        CaseRecord,
        CaseState,
        HistoryEntry,
        QuoteStatus,
    )
    from domain.chat import (
        RelationshipLink,
    )
    from domain.enums import CaseStatus, ChangedBy, Party, SubStatus
    from domain.errors import (
        INVALID_TRANSITION,
        NOT_A_PARTY,
        VALIDATION_FAILED,
    )
    from domain.lifecycle import lifecycle_of
    from domain.schedule import next_survey_after
    from domain.tasks import CATALOGUE, ResolvedBy, Task, TaskType, task_id
    from domain.transitions import (
        ACTIVE,
        FINISHED,
        HOLD_DEFAULT_PARTY,
        HOLD_TASKS,
        SUB_STATUSES,
        CloseCode,
        Mover,
        allowed_targets,
        close_code_for,
        may_move,
        payment_rule_broken,
    )
    from workflows.base import TaskOwnerWorkflow


def invalid_transition(message: str) -> ApplicationError:
    return ApplicationError(message, type=INVALID_TRANSITION, non_retryable=True)


def failed(message: str) -> ApplicationError:
    return ApplicationError(message, type=VALIDATION_FAILED, non_retryable=True)


def not_a_party(message: str) -> ApplicationError:
    return ApplicationError(message, type=NOT_A_PARTY, non_retryable=True)


def require_text(text: str | None, what: str) -> None:
    if not (text or "").strip():
        raise failed(f"{what} is required")


def org_name(org: OrgRef) -> str:
    return org.name or str(org.id)


class CaseCore(TaskOwnerWorkflow):
    """The case's state and the rules every handler group applies when it changes the case."""

    state: CaseState

    @property
    def record(self) -> CaseRecord:
        return self.state.record

    def _assign(self, partner: OrgRef, *, changed_by: str, note: str) -> None:
        self.record.partner = partner
        if partner.id not in self.state.linked_partners:
            self.state.linked_partners.append(partner.id)
            # Written with this change's projection (the pair's row); the pair's workflow
            # starts with its first general-chat message (docs/decisions/0015).
            self.state.pending_links.append(
                RelationshipLink(
                    creditor=self.record.creditor, partner=partner, case_id=self.record.case_id
                )
            )
        self._change(
            CaseStatus.ASSIGNED, SubStatus.PARTNER_REVIEWING, changed_by=changed_by, note=note
        )
        self._raise_task(
            TaskType.REVIEW_NEW_CASE,
            key=f"review:{partner.id}",
            owner=partner,
            title=f"Review new case {self.record.case_number}",
            description=(
                f"{self.record.submission.currency_code} {self.record.submission.amount_to_recover}"
                f" against {self.record.submission.debtor.name}: check the case and accept or "
                "reject it."
            ),
        )

    def _check_reviewing_partner(self, partner_id: UUID) -> None:
        if self.record.status is not CaseStatus.ASSIGNED or self.record.partner_id != partner_id:
            raise invalid_transition(
                f"only the assigned partner can accept, reject or quote on a case under review; "
                f"this one is {self._status_label()}"
            )

    def _resume_target(self) -> tuple[CaseStatus, SubStatus | None]:
        record = self.record
        status = record.held_from or CaseStatus.IN_COLLECTION
        sub_status = record.held_from_sub_status
        if status is CaseStatus.ASSIGNED:
            sub_status = SubStatus.PARTNER_REVIEWING
        return status, sub_status

    def _check_change(
        self,
        mover: Mover,
        org_id: UUID,
        status: CaseStatus,
        sub_status: SubStatus | None,
        *,
        close_code: CloseCode | None = None,
        waiting_for: Party | None = None,
    ) -> None:
        """Refuse a change the transition table, the sub-status list or the close rules forbid."""
        record = self.record
        if mover is Mover.PARTNER and record.partner_id != org_id:
            raise invalid_transition("only the partner the case is assigned to can change it")
        if not may_move(mover, record.status, status):
            allowed = ", ".join(s.value for s in allowed_targets(mover, record.status)) or "none"
            raise invalid_transition(
                f"a {mover.value} cannot move a case from {self._status_label()} to "
                f"{status.value}; allowed from here: {allowed}"
            )
        self._check_partner_and_origin(status, sub_status, waiting_for)
        if sub_status not in SUB_STATUSES.get(status, (None,)):
            raise failed(
                f"{sub_status.value if sub_status else 'no sub-status'} is not a sub-status of "
                f"{status.value}"
            )
        close_code = close_code_for(status, sub_status, close_code)
        if status in FINISHED and close_code is None:
            raise failed(f"{status.value.lower()} needs a closeCode")
        if status is CaseStatus.ON_HOLD and sub_status is not None:
            party = waiting_for or HOLD_DEFAULT_PARTY.get(sub_status)
            if party is None:
                raise failed(f"{sub_status.value} needs waitingFor: Creditor or Partner")
            if (sub_status, party) not in HOLD_TASKS:
                raise failed(f"{sub_status.value} cannot wait for the {party.value.lower()}")
        broken = payment_rule_broken(
            close_code,
            sub_status,
            paid=record.paid_amount,
            amount=record.submission.amount_to_recover,
        )
        if broken:
            raise failed(broken)

    def _check_partner_and_origin(
        self, status: CaseStatus, sub_status: SubStatus | None, waiting_for: Party | None
    ) -> None:
        """Rules no mover (ops included) may break: they would leave a case nobody can work."""
        record = self.record
        if record.partner is None and (
            status in (CaseStatus.ASSIGNED, *ACTIVE)
            or (status is CaseStatus.ON_HOLD and waiting_for is Party.PARTNER)
        ):
            raise invalid_transition(
                f"a case is {status.value} only with a partner; assign one first "
                "(POST /api/cases/{id}/assign)"
            )
        if status in (CaseStatus.CREATED, CaseStatus.VALIDATED) and record.worked_by is not None:
            raise invalid_transition(
                f"a case a partner has worked cannot go back to {status.value}; close it, or "
                "put it On Hold"
            )
        if status is CaseStatus.ASSIGNED and record.held_from is not CaseStatus.ASSIGNED:
            raise invalid_transition(
                "a case becomes Assigned by assignment (POST /api/cases/{id}/assign), or by "
                "resuming the review it was held from"
            )
        if status is CaseStatus.ON_HOLD and record.status not in (
            CaseStatus.ASSIGNED,
            CaseStatus.ON_HOLD,
            *ACTIVE,
        ):
            raise invalid_transition(
                f"only a case under review or in collection can be put On Hold, not "
                f"{self._status_label()}"
            )
        if status is CaseStatus.RESOLVED and record.worked_by is None:
            raise invalid_transition(
                "only a case a partner accepted can be Resolved; close it with a closeCode"
            )

    def _change(
        self,
        status: CaseStatus,
        sub_status: SubStatus | None,
        *,
        changed_by: str,
        note: str | None,
        user_id: UUID | None = None,
        org_id: UUID | None = None,
        waiting_for: Party | None = None,
        close_code: CloseCode | None = None,
    ) -> None:
        """Every status change after intake: history, hold tasks, surveys and closing follow.

        Tasks the change solves are credited to ``user_id`` when they belong to its organisation
        ``org_id``; another organisation's tasks are solved by the system (a user id never shows
        up in the other side's task list)."""
        record = self.record
        now = workflow.now()
        was = record.status
        hold_before = self._hold_task()
        if status is CaseStatus.ON_HOLD:
            if was is not CaseStatus.ON_HOLD:
                record.held_from, record.held_from_sub_status = was, record.sub_status
            record.waiting_for = (
                waiting_for or HOLD_DEFAULT_PARTY.get(sub_status) if sub_status else None
            )
        else:
            record.waiting_for = record.held_from = record.held_from_sub_status = None
        if status in FINISHED:
            record.close_code = close_code_for(status, sub_status, close_code)
        if status in (CaseStatus.CREATED, CaseStatus.VALIDATED):
            record.partner = None  # back before assignment: no partner holds the case
        self._record_status(status, sub_status, changed_by=changed_by, note=note)
        hold_after = self._hold_task()
        if hold_before is not None and hold_before is not hold_after:
            self.book.solve_open(
                hold_before,
                now=now,
                reason=f"case is now {self._status_label()}",
                user_id=user_id,
                org_id=org_id,
            )
        if hold_after is not None and self.book.find_open(hold_after) is None:
            self._raise_hold_task(hold_after, note)
        if not self._quoting():
            self._end_quote_round("the quote round ended")
        if status not in (CaseStatus.ASSIGNED, CaseStatus.ON_HOLD, *ACTIVE):
            self.book.solve_open(
                TaskType.REVIEW_NEW_CASE, now=now, reason=f"case is {self._status_label()}"
            )
        if status in ACTIVE:
            if record.partner is not None:
                record.worked_by = record.partner
            self.book.solve_open(
                TaskType.REVIEW_NEW_CASE,
                now=now,
                reason="case accepted",
                user_id=user_id,
                org_id=org_id,
            )
            if self.state.survey_anchor is None:
                self.state.survey_anchor = now
            if self.state.next_survey_at is None:
                self.state.next_survey_at = next_survey_after(self.state.survey_anchor, now)
        else:
            self.book.solve_open(
                TaskType.UPDATE_CASE_STATUS,
                now=now,
                reason=f"case is {self._status_label()}, no survey needed",
            )
        if status in FINISHED and was not in FINISHED:
            self._finish(f"case {status.value.lower()}")

    def _raise_task(
        self,
        type: TaskType,
        *,
        key: str,
        owner: OrgRef,
        title: str,
        description: str,
        **more: Any,
    ) -> Task:
        """Raise a task on this case, now (``TaskBook.raise_task`` for the case's own tasks)."""
        return self.book.raise_task(
            type,
            key=key,
            now=workflow.now(),
            owner=owner,
            case_id=self.record.case_id,
            title=title,
            description=description,
            **more,
        )

    async def _on_closed_by_hand(self, task: Task) -> None:
        """A hold task marked done (MoreInfoNeeded) means the information was given: the case
        returns to where it was held from, as when the creditor answers in the chat."""
        if task.type is not self._hold_task():
            return
        status, sub_status = self._resume_target()
        user_id = task.resolved_by.user_id if task.resolved_by else None
        self._change(
            status,
            sub_status,
            changed_by=str(user_id) if user_id else ChangedBy.SYSTEM.value,
            note="Information provided (marked done)",
            user_id=user_id,
            org_id=task.owner_org_id,
        )

    def _quoting(self) -> bool:
        """Whether the case is in a quote round (Collecting quotes / Pending quote selection)."""
        return self.record.status is CaseStatus.VALIDATED and self.record.sub_status in (
            SubStatus.COLLECTING_QUOTES,
            SubStatus.PENDING_QUOTE_SELECTION,
        )

    def _end_quote_round(self, reason: str) -> None:
        """Open invitations and quotes are withdrawn and their tasks solved (idempotent)."""
        now = workflow.now()
        changed = False
        for quote in self.record.quotes:
            if quote.status in (QuoteStatus.REQUESTED, QuoteStatus.SUBMITTED):
                quote.status = QuoteStatus.WITHDRAWN
                changed = True
        for type in (TaskType.PROVIDE_QUOTE, TaskType.SELECT_QUOTE_WINNER):
            self.book.solve_open(type, now=now, reason=reason)
        if changed or self.state.first_quote_at is not None:
            self.state.first_quote_at = None
            self._touch()

    def _hold_task(self) -> TaskType | None:
        record = self.record
        if record.status is not CaseStatus.ON_HOLD or record.sub_status is None:
            return None
        if record.waiting_for is None:
            return None
        return HOLD_TASKS.get((record.sub_status, record.waiting_for))

    def _raise_hold_task(self, type: TaskType, note: str | None) -> None:
        record = self.record
        number = record.case_number
        title, owner, fallback = {
            TaskType.MORE_INFO_NEEDED: (
                f"The partner needs more information on case {number}",
                record.creditor,
                "Answer the partner in the case chat.",
            ),
            TaskType.CLIENT_INPUT_REQUIRED: (
                f"Case {number} is paused until you act",
                record.creditor,
                "The partner paused the case and needs your input: answer in the case chat.",
            ),
            TaskType.FOLLOW_UP_PAUSED_CASE: (
                f"Follow up on paused case {number}",
                record.partner or record.creditor,
                "Resume the case when it can go on, or close it.",
            ),
        }[type]
        self._raise_task(
            type, key=f"hold:{type.value}", owner=owner, title=title, description=note or fallback
        )

    def _finish(self, reason: str) -> None:
        """The case is Resolved or Closed: its open work ends, the after-care tasks start."""
        record = self.record
        now = workflow.now()
        for task in self.book.open_tasks():
            if not CATALOGUE[task.type].outlives_case:
                self.book.solve(task, now=now, by=ResolvedBy(kind="system", reason=reason))
        self.state.next_survey_at = None
        self._queue_account("case_closed")
        partner = record.worked_by
        if partner is None:
            return
        self._raise_task(
            TaskType.REVIEW_PARTNER,
            key="review-partner",
            owner=record.creditor,
            title=f"Review {org_name(partner)} on case {record.case_number}",
            description="Rate the collection partner from 0 to 10, with a comment.",
        )
        paid_to_creditor = sum(
            (p.amount for p in record.payments if p.paid_to is Party.CREDITOR), Decimal(0)
        )
        if paid_to_creditor > 0:
            self._raise_task(
                TaskType.RECORD_PAYMENT,
                key="commission",
                owner=partner,
                title=f"Invoice the commission on case {record.case_number}",
                description=(
                    f"The debtor paid {record.submission.currency_code} {paid_to_creditor} to "
                    "the creditor: invoice your commission and record its payment."
                ),
            )

    def _new_id(self, kind: str) -> str:
        self.state.entity_seq += 1
        return task_id(self.book.workflow_id, f"{kind}#{self.state.entity_seq}")

    def _queue_account(
        self,
        name: AccountSignalName,
        *,
        needs_bank_account: bool = False,
        contract_signed: bool = False,
    ) -> None:
        self._queue(
            "account_signals",
            AccountSignal(
                creditor=self.record.creditor,
                name=name,
                event=CaseAccountEvent(
                    case_id=self.record.case_id,
                    needs_bank_account=needs_bank_account,
                    contract_signed=contract_signed,
                ),
            ),
        )
        self._touch()

    def _record_status(
        self, status: CaseStatus, sub_status: SubStatus | None, *, changed_by: str, note: str | None
    ) -> None:
        """Change status and append the change to history (and the outbox)."""
        now = workflow.now()
        record = self.record
        old_status, old_sub = record.status, record.sub_status
        record.status, record.sub_status, record.last_status_change = status, sub_status, now
        self.state.history_seq += 1
        self.state.pending_history.append(
            HistoryEntry(
                seq=self.state.history_seq,
                timestamp=now,
                status=status,
                sub_status=sub_status,
                changed_by=changed_by,
                note=note,
            )
        )
        self.book.emit(
            "case.created" if self.state.history_seq == 1 else "case.status.changed",
            now=now,
            org_id=record.creditor.id,
            case_id=record.case_id,
            payload={
                "caseNumber": record.case_number,
                "sequence": self.state.history_seq,
                "oldStatus": old_status.value if self.state.history_seq > 1 else None,
                "oldSubStatus": old_sub.value if old_sub and self.state.history_seq > 1 else None,
                "newStatus": status.value,
                "newSubStatus": sub_status.value if sub_status else None,
                "newLifecycle": lifecycle_of(status, sub_status).value,
            },
        )
        self._upsert(
            [
                sa.CASE_STATUS.value_set(status.value),
                sa.PARTNER_ID.value_set(str(record.partner_id))
                if record.partner_id
                else sa.PARTNER_ID.value_unset(),
            ]
        )
        self._touch()

    def _record_note(self, note: str, *, changed_by: str) -> None:
        """A history entry that keeps the status (a monthly progress note)."""
        self.state.history_seq += 1
        self.state.pending_history.append(
            HistoryEntry(
                seq=self.state.history_seq,
                timestamp=workflow.now(),
                status=self.record.status,
                sub_status=self.record.sub_status,
                changed_by=changed_by,
                note=note,
            )
        )
        self._touch()

    def _status_label(self) -> str:
        sub = f" / {self.record.sub_status.value}" if self.record.sub_status else ""
        return f"{self.record.status.value}{sub}"
