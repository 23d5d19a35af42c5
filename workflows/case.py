"""``CaseWorkflow``: the single writer of one case's lifecycle (id ``case-{caseId}``).

Intake: Created → validation (CaseValidationNeedsInfo until corrected) → waits for a signed
contract (SignContract, on the creditor's account workflow) and a bank account (AssignBankAccount,
likewise) → Validated → Assigned to a partner (ReviewNewCase) → accepted (In Collection) or
rejected (back to Validated).
"""

from __future__ import annotations

import datetime as dt
from datetime import timedelta
from decimal import Decimal
from uuid import UUID

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.accounts import AccountActivities
    from activities.projection import ProjectionActivities
    from domain import search_attributes as sa
    from domain.accounts import AccountSignal, AccountSignalName, CaseAccountEvent, OrgRef
    from domain.cases import (
        AssignBankAccountInput,
        AssignPartnerInput,
        CaseProjection,
        CaseRecord,
        CaseState,
        CaseWorkflowInput,
        ChangeStatusInput,
        CommissionPayment,
        Complaint,
        CorrectCaseInput,
        DeclineQuoteInput,
        FileComplaintInput,
        GenericTaskInput,
        HistoryEntry,
        PartnerDecisionInput,
        PartnerReview,
        Payment,
        Quote,
        QuoteStatus,
        RecordCommissionInput,
        RecordPaymentInput,
        RequestQuotesInput,
        RespondToComplaintInput,
        ResumeInput,
        ReviewPartnerInput,
        SelectQuoteInput,
        SubmitCaseInput,
        SubmitQuoteInput,
        SurveyInput,
        SurveyOutcome,
    )
    from domain.chat import (
        MAX_ATTACHMENTS_PER_MESSAGE,
        ChatMessage,
        PostMessageInput,
        RelationshipLink,
        ThreadType,
    )
    from domain.enums import CaseStatus, ChangedBy, Party, SubStatus
    from domain.errors import (
        CASE_NOT_EDITABLE,
        INVALID_TRANSITION,
        NOT_A_PARTY,
        NOT_FOUND,
        NOTHING_TO_ANSWER,
        VALIDATION_FAILED,
    )
    from domain.ids import case_workflow_id
    from domain.lifecycle import lifecycle_of
    from domain.schedule import QUOTE_SELECTION_REMINDERS, QUOTES_EXPIRE_AFTER, next_survey_after
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
    from domain.validation import validate_case
    from workflows.base import TaskOwnerWorkflow
    from workflows.chat import ROLE_OF, check_body, route_message
    from workflows.retry import PROJECTION_RETRY, SIGNAL_RETRY

VALIDATION_KEY = "validation"


def _invalid_transition(message: str) -> ApplicationError:
    return ApplicationError(message, type=INVALID_TRANSITION, non_retryable=True)


def _failed(message: str) -> ApplicationError:
    return ApplicationError(message, type=VALIDATION_FAILED, non_retryable=True)


def _not_a_party(message: str) -> ApplicationError:
    return ApplicationError(message, type=NOT_A_PARTY, non_retryable=True)


def _require_text(text: str | None, what: str) -> None:
    if not (text or "").strip():
        raise _failed(f"{what} is required")


def _name(org: OrgRef) -> str:
    return org.name or str(org.id)


@workflow.defn
class CaseWorkflow(TaskOwnerWorkflow):
    """Owns one case: status, history, tasks and their deadlines."""

    @workflow.init
    def __init__(self, input: CaseWorkflowInput) -> None:
        self.state = input.state or CaseState(
            record=input.record, history_limit=input.history_limit
        )
        self._init_book(case_workflow_id(self.state.record.case_id))

    @property
    def record(self) -> CaseRecord:
        return self.state.record

    @workflow.run
    async def run(self, input: CaseWorkflowInput) -> None:
        """Create the case, then serve it: react to actions, keep deadlines, project changes."""
        if self.state.history_seq == 0:
            self.record.created_at = workflow.now()
            self._record_status(
                CaseStatus.CREATED, None, changed_by=ChangedBy.API, note="Case created via API"
            )
            self._revalidate()
            self._queue_account("case_opened", needs_bank_account=self.record.bank_account is None)
        self._publish()
        await self._serve()

    # -- creation and intake ------------------------------------------------------------------
    @workflow.update
    async def submit(self, input: SubmitCaseInput) -> CaseRecord:
        """Sent with the start: returns once the case is in the read model."""
        await workflow.wait_condition(lambda: self.state.projected_version >= 1)
        return self.record

    @workflow.update
    async def correct_case(self, input: CorrectCaseInput) -> CaseRecord:
        """Replace the case data while it is in intake; validation runs again."""
        self.record.submission = input.submission
        self._revalidate()
        self._touch()
        await self._settled()
        return self.record

    @correct_case.validator
    def validate_correct_case(self, input: CorrectCaseInput) -> None:
        if self.record.status is not CaseStatus.CREATED:
            raise ApplicationError(
                f"case data can be corrected only while the case is Created, "
                f"not {self.record.status.value}",
                type=CASE_NOT_EDITABLE,
                non_retryable=True,
            )

    @workflow.update
    async def assign_bank_account(self, input: AssignBankAccountInput) -> CaseRecord:
        """Set the payout bank account; a case that had none stops counting towards the task."""
        had_none = self.record.bank_account is None
        self.record.bank_account = input.bank_account
        self._revalidate()
        if had_none:
            self._queue_account("bank_account_assigned")
        self._touch()
        await self._settled()
        return self.record

    @assign_bank_account.validator
    def validate_assign_bank_account(self, input: AssignBankAccountInput) -> None:
        if self.record.status in FINISHED:
            raise _invalid_transition(f"the case is {self.record.status.value}")
        currency = self.record.submission.currency_code
        # In intake a mismatch becomes a validation task; afterwards nothing would flag it.
        if (
            self.record.status is not CaseStatus.CREATED
            and input.bank_account.currency_code != currency
        ):
            raise ApplicationError(
                f"the bank account is in {input.bank_account.currency_code}, the claim in {currency}",
                type=VALIDATION_FAILED,
                non_retryable=True,
            )

    @workflow.signal
    def contract_signed(self) -> None:
        """From the creditor's account workflow: the contract covering this case is signed."""
        if not self.state.contract_confirmed:
            self.state.contract_confirmed = True
            self._touch()

    # -- assignment and the partner's review ----------------------------------------------------
    @workflow.update
    async def assign_partner(self, input: AssignPartnerInput) -> CaseRecord:
        """Give a validated case to a partner, who gets ReviewNewCase."""
        partner = input.partner
        self._assign(partner, changed_by=str(input.user_id), note=f"Assigned to {_name(partner)}")
        await self._settled()
        return self.record

    @assign_partner.validator
    def validate_assign_partner(self, input: AssignPartnerInput) -> None:
        if self.record.status is not CaseStatus.VALIDATED or self.record.sub_status is not None:
            raise _invalid_transition(
                f"only a Validated case ready for assignment can be assigned; this one is "
                f"{self._status_label()}"
            )

    def _assign(self, partner: OrgRef, *, changed_by: str, note: str) -> None:
        self.record.partner = partner
        if partner.id not in self.state.linked_partners:
            self.state.linked_partners.append(partner.id)
            self.state.relationship_outbox.append(
                RelationshipLink(
                    creditor=self.record.creditor, partner=partner, case_id=self.record.case_id
                )
            )
        self._change(
            CaseStatus.ASSIGNED, SubStatus.PARTNER_REVIEWING, changed_by=changed_by, note=note
        )
        self.book.raise_task(
            TaskType.REVIEW_NEW_CASE,
            key=f"review:{partner.id}",
            now=workflow.now(),
            owner=partner,
            case_id=self.record.case_id,
            title=f"Review new case {self.record.case_number}",
            description=(
                f"{self.record.submission.currency_code} {self.record.submission.amount_to_recover}"
                f" against {self.record.submission.debtor.name}: check the case and accept or "
                "reject it."
            ),
        )

    @workflow.update
    async def accept_case(self, input: PartnerDecisionInput) -> CaseRecord:
        """The assigned partner accepts: the case goes In Collection."""
        self._change(
            CaseStatus.IN_COLLECTION,
            None,
            changed_by=str(input.user_id),
            note="Accepted by partner",
            user_id=input.user_id,
            org_id=input.partner_id,
        )
        await self._settled()
        return self.record

    @workflow.update
    async def reject_case(self, input: PartnerDecisionInput) -> CaseRecord:
        """The assigned partner rejects (with a reason): the case is Validated again."""
        partner = self.record.partner
        self.record.partner = None
        self.book.solve_open(
            TaskType.REVIEW_NEW_CASE,
            now=workflow.now(),
            reason=f"case rejected: {input.reason}",
            user_id=input.user_id,
        )
        self._change(
            CaseStatus.VALIDATED,
            None,
            changed_by=str(input.user_id),
            note=f"Rejected by {_name(partner) if partner else 'partner'}: {input.reason}",
        )
        await self._settled()
        return self.record

    @accept_case.validator
    def validate_accept_case(self, input: PartnerDecisionInput) -> None:
        self._check_reviewing_partner(input.partner_id)

    @reject_case.validator
    def validate_reject_case(self, input: PartnerDecisionInput) -> None:
        self._check_reviewing_partner(input.partner_id)
        _require_text(input.reason, "a reason")

    def _check_reviewing_partner(self, partner_id: UUID) -> None:
        if self.record.status is not CaseStatus.ASSIGNED or self.record.partner_id != partner_id:
            raise _invalid_transition(
                f"only the assigned partner can accept, reject or quote on a case under review; "
                f"this one is {self._status_label()}"
            )

    # -- status changes -------------------------------------------------------------------------
    @workflow.update
    async def change_status(self, input: ChangeStatusInput) -> CaseRecord:
        """Move the case as the transition table allows (partner update, withdrawal, ops)."""
        self._change(
            input.status,
            input.sub_status,
            changed_by=str(input.user_id),
            note=input.note,
            user_id=input.user_id,
            org_id=input.org_id,
            waiting_for=input.waiting_for,
            close_code=input.close_code,
        )
        await self._settled()
        return self.record

    @change_status.validator
    def validate_change_status(self, input: ChangeStatusInput) -> None:
        self._check_change(
            input.mover,
            input.org_id,
            input.status,
            input.sub_status,
            close_code=input.close_code,
            waiting_for=input.waiting_for,
        )

    @workflow.update
    async def resume(self, input: ResumeInput) -> CaseRecord:
        """End a hold: the case returns to the status it was in before."""
        status, sub_status = self._resume_target()
        self._change(
            status,
            sub_status,
            changed_by=str(input.user_id),
            note=input.note or "Resumed",
            user_id=input.user_id,
            org_id=input.org_id,
        )
        await self._settled()
        return self.record

    @resume.validator
    def validate_resume(self, input: ResumeInput) -> None:
        if self.record.status is not CaseStatus.ON_HOLD:
            raise _invalid_transition(
                f"only a case On Hold can resume; this one is {self._status_label()}"
            )
        status, sub_status = self._resume_target()
        self._check_change(input.mover, input.org_id, status, sub_status)

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
            raise _invalid_transition("only the partner the case is assigned to can change it")
        if not may_move(mover, record.status, status):
            allowed = ", ".join(s.value for s in allowed_targets(mover, record.status)) or "none"
            raise _invalid_transition(
                f"a {mover.value} cannot move a case from {self._status_label()} to "
                f"{status.value}; allowed from here: {allowed}"
            )
        if status is not CaseStatus.ASSIGNED and sub_status not in SUB_STATUSES.get(
            status, (None,)
        ):
            raise _failed(
                f"{sub_status.value if sub_status else 'no sub-status'} is not a sub-status of "
                f"{status.value}"
            )
        close_code = close_code_for(status, sub_status, close_code)
        if status in FINISHED and close_code is None:
            raise _failed(f"{status.value.lower()} needs a closeCode")
        if status is CaseStatus.ON_HOLD and sub_status is not None:
            party = waiting_for or HOLD_DEFAULT_PARTY.get(sub_status)
            if party is None:
                raise _failed(f"{sub_status.value} needs waitingFor: Creditor or Partner")
            if (sub_status, party) not in HOLD_TASKS:
                raise _failed(f"{sub_status.value} cannot wait for the {party.value.lower()}")
        broken = payment_rule_broken(
            close_code,
            sub_status,
            paid=record.paid_amount,
            amount=record.submission.amount_to_recover,
        )
        if broken:
            raise _failed(broken)

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
        self._record_status(status, sub_status, changed_by=changed_by, note=note)
        hold_after = self._hold_task()
        if hold_before is not hold_after:
            if hold_before is not None:
                self._solve_as(hold_before, f"case is now {self._status_label()}", user_id, org_id)
            if hold_after is not None:
                self._raise_hold_task(hold_after, note)
        if status in ACTIVE:
            if record.partner is not None:
                record.worked_by = record.partner
            self._solve_as(TaskType.REVIEW_NEW_CASE, "case accepted", user_id, org_id)
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

    def _solve_as(
        self, type: TaskType, reason: str, user_id: UUID | None, org_id: UUID | None
    ) -> None:
        """Solve the open tasks of ``type``: by ``user_id`` if its organisation owns them."""
        for task in self.book.open_tasks():
            if task.type is type:
                mine = user_id is not None and task.owner_org_id == org_id
                self.book.solve(
                    task,
                    now=workflow.now(),
                    by=ResolvedBy(
                        kind="user" if mine else "system",
                        user_id=user_id if mine else None,
                        reason=reason,
                    ),
                )

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
        self.book.raise_task(
            type,
            key=f"hold:{type.value}",
            now=workflow.now(),
            owner=owner,
            case_id=record.case_id,
            title=title,
            description=note or fallback,
        )

    def _finish(self, reason: str) -> None:
        """The case is Resolved or Closed: its open work ends, the after-care tasks start."""
        record = self.record
        now = workflow.now()
        for task in self.book.open_tasks():
            if not CATALOGUE[task.type].outlives_case:
                self.book.solve(task, now=now, by=ResolvedBy(kind="system", reason=reason))
        for quote in record.quotes:
            if quote.status in (QuoteStatus.REQUESTED, QuoteStatus.SUBMITTED):
                quote.status = QuoteStatus.WITHDRAWN
        self.state.next_survey_at = None
        self.state.first_quote_at = None
        self._queue_account("case_closed")
        partner = record.worked_by
        if partner is None:
            return
        self.book.raise_task(
            TaskType.REVIEW_PARTNER,
            key="review-partner",
            now=now,
            owner=record.creditor,
            case_id=record.case_id,
            title=f"Review {_name(partner)} on case {record.case_number}",
            description="Rate the collection partner from 0 to 10, with a comment.",
        )
        paid_to_creditor = sum(
            (p.amount for p in record.payments if p.paid_to is Party.CREDITOR), Decimal(0)
        )
        if paid_to_creditor > 0:
            self.book.raise_task(
                TaskType.RECORD_PAYMENT,
                key="commission",
                now=now,
                owner=partner,
                case_id=record.case_id,
                title=f"Invoice the commission on case {record.case_number}",
                description=(
                    f"The debtor paid {record.submission.currency_code} {paid_to_creditor} to "
                    "the creditor: invoice your commission and record its payment."
                ),
            )

    # -- the monthly survey ---------------------------------------------------------------------
    @workflow.update
    async def submit_survey(self, input: SurveyInput) -> CaseRecord:
        """The partner's monthly answer: a progress note, and go on, pause or close."""
        now = workflow.now()
        self.book.solve_open(
            TaskType.UPDATE_CASE_STATUS, now=now, reason="survey submitted", user_id=input.user_id
        )
        status, sub_status = self._survey_target(input)
        note = f"Monthly update: {input.note}"
        if (status, sub_status) == (self.record.status, self.record.sub_status):
            self._record_note(note, changed_by=str(input.user_id))
        else:
            self._change(
                status,
                sub_status,
                changed_by=str(input.user_id),
                note=note,
                user_id=input.user_id,
                org_id=input.partner_id,
                waiting_for=input.waiting_for,
                close_code=input.close_code,
            )
        await self._settled()
        return self.record

    @submit_survey.validator
    def validate_submit_survey(self, input: SurveyInput) -> None:
        if self.record.partner_id != input.partner_id:
            raise _not_a_party("only the partner working the case answers its survey")
        if self.book.find_open(TaskType.UPDATE_CASE_STATUS) is None:
            raise ApplicationError(
                "no survey is due on this case", type=NOTHING_TO_ANSWER, non_retryable=True
            )
        _require_text(input.note, "a progress note")
        status, sub_status = self._survey_target(input)
        expected = {
            SurveyOutcome.CONTINUE: ACTIVE,
            SurveyOutcome.PAUSE: (CaseStatus.ON_HOLD,),
            SurveyOutcome.CLOSE: FINISHED,
        }[input.outcome]
        if status not in expected:
            raise _failed(
                f"a '{input.outcome.value}' survey answer moves the case to "
                f"{' or '.join(s.value for s in expected)}, not {status.value}"
            )
        if (status, sub_status) != (self.record.status, self.record.sub_status):
            self._check_change(
                Mover.PARTNER,
                input.partner_id,
                status,
                sub_status,
                close_code=input.close_code,
                waiting_for=input.waiting_for,
            )

    def _survey_target(self, input: SurveyInput) -> tuple[CaseStatus, SubStatus | None]:
        if input.outcome is SurveyOutcome.PAUSE:
            return CaseStatus.ON_HOLD, SubStatus.PAUSED
        if input.status is None:
            return self.record.status, self.record.sub_status
        return input.status, input.sub_status

    def _raise_due_survey(self, now: dt.datetime) -> None:
        """On each monthly anniversary: a survey for an active case, unless one is still open."""
        state = self.state
        if (
            state.next_survey_at is None
            or now < state.next_survey_at
            or state.survey_anchor is None
        ):
            return
        record = self.record
        if (
            record.status in ACTIVE
            and record.partner is not None
            and self.book.find_open(TaskType.UPDATE_CASE_STATUS) is None
        ):
            self.book.raise_task(
                TaskType.UPDATE_CASE_STATUS,
                key="survey",
                now=now,
                owner=record.partner,
                case_id=record.case_id,
                title=f"Monthly update on case {record.case_number}",
                description=(
                    "Tell the creditor how collection is going: continue with a progress note, "
                    "pause, or close the case."
                ),
            )
        state.next_survey_at = next_survey_after(state.survey_anchor, now)
        self._touch()

    # -- payments, commission and the partner review -------------------------------------------
    @workflow.update
    async def record_payment(self, input: RecordPaymentInput) -> Payment:
        """A payment from the debtor, to the creditor or the partner (Paid needs them to cover
        the amount to recover)."""
        payment = Payment(
            id=self._new_id("payment"),
            amount=input.amount,
            paid_on=input.paid_on,
            paid_to=input.paid_to,
            note=input.note,
            recorded_by=input.user_id,
            recorded_at=workflow.now(),
        )
        self.record.payments.append(payment)
        self._touch()
        await self._settled()
        return payment

    @record_payment.validator
    def validate_record_payment(self, input: RecordPaymentInput) -> None:
        if self.record.partner_id != input.partner_id:
            raise _not_a_party("only the partner working the case records its payments")
        if self.record.status not in (*ACTIVE, CaseStatus.ON_HOLD):
            raise _invalid_transition(
                f"payments are recorded while the case is worked; this one is "
                f"{self._status_label()}"
            )
        if input.amount <= 0:
            raise _failed("amount must be greater than 0")

    @workflow.update
    async def record_commission(self, input: RecordCommissionInput) -> CommissionPayment:
        """The creditor paid the partner's commission invoice: RecordPayment and ChasePayment
        are solved."""
        now = workflow.now()
        payment = CommissionPayment(
            id=self._new_id("commission"),
            amount=input.amount,
            paid_on=input.paid_on,
            invoice_reference=input.invoice_reference,
            recorded_by=input.user_id,
            recorded_at=now,
        )
        self.record.commission_payments.append(payment)
        for type in (TaskType.RECORD_PAYMENT, TaskType.CHASE_PAYMENT):
            self.book.solve_open(
                type, now=now, reason="commission payment recorded", user_id=input.user_id
            )
        self._touch()
        await self._settled()
        return payment

    @record_commission.validator
    def validate_record_commission(self, input: RecordCommissionInput) -> None:
        worked_by = self.record.worked_by
        if worked_by is None or worked_by.id != input.partner_id:
            raise _not_a_party("only the partner that worked the case records its commission")
        if not any(
            self.book.find_open(t) for t in (TaskType.RECORD_PAYMENT, TaskType.CHASE_PAYMENT)
        ):
            raise ApplicationError(
                "no commission payment is due on this case",
                type=NOTHING_TO_ANSWER,
                non_retryable=True,
            )
        if input.amount <= 0:
            raise _failed("amount must be greater than 0")

    @workflow.update
    async def review_partner(self, input: ReviewPartnerInput) -> CaseRecord:
        """The creditor rates the partner that worked the closed case (solves ReviewPartner)."""
        worked_by = self.record.worked_by
        assert worked_by is not None  # the validator checked
        now = workflow.now()
        self.record.partner_review = PartnerReview(
            partner_id=worked_by.id,
            rating=input.rating,
            comment=input.comment,
            reviewed_by=input.user_id,
            reviewed_at=now,
        )
        self.book.solve_open(
            TaskType.REVIEW_PARTNER, now=now, reason="partner reviewed", user_id=input.user_id
        )
        self._touch()
        await self._settled()
        return self.record

    @review_partner.validator
    def validate_review_partner(self, input: ReviewPartnerInput) -> None:
        if self.record.status not in FINISHED or self.record.worked_by is None:
            raise _invalid_transition("a partner is reviewed once a case it worked has ended")
        if self.record.partner_review is not None:
            raise _invalid_transition("this case's partner has already been reviewed")
        if not 0 <= input.rating <= 10:
            raise _failed("rating must be between 0 and 10")

    # -- complaints ------------------------------------------------------------------------------
    @workflow.update
    async def file_complaint(self, input: FileComplaintInput) -> Complaint:
        """The creditor complains about the partner: RespondToComplaint for the partner."""
        record = self.record
        partner = record.partner or record.worked_by
        assert partner is not None  # the validator checked
        complaint = Complaint(
            id=self._new_id("complaint"),
            message=input.message,
            filed_by=input.user_id,
            filed_at=workflow.now(),
        )
        record.complaints.append(complaint)
        self.book.raise_task(
            TaskType.RESPOND_TO_COMPLAINT,
            key=f"complaint:{complaint.id}",
            now=workflow.now(),
            owner=partner,
            case_id=record.case_id,
            title=f"Respond to a complaint on case {record.case_number}",
            description=input.message,
        )
        self._touch()
        await self._settled()
        return complaint

    @file_complaint.validator
    def validate_file_complaint(self, input: FileComplaintInput) -> None:
        if self.record.partner is None and self.record.worked_by is None:
            raise _invalid_transition(
                "no partner has worked this case: there is nobody to complain about"
            )
        _require_text(input.message, "a message")

    @workflow.update
    async def respond_to_complaint(self, input: RespondToComplaintInput) -> Complaint:
        """The partner answers a complaint (solves its RespondToComplaint)."""
        complaint = self._complaint(input.complaint_id)
        now = workflow.now()
        complaint.response, complaint.responded_by, complaint.responded_at = (
            input.message,
            input.user_id,
            now,
        )
        self.book.solve_open(
            TaskType.RESPOND_TO_COMPLAINT,
            key=f"complaint:{complaint.id}",
            now=now,
            reason="partner responded",
            user_id=input.user_id,
        )
        self._touch()
        await self._settled()
        return complaint

    @respond_to_complaint.validator
    def validate_respond_to_complaint(self, input: RespondToComplaintInput) -> None:
        partner = self.record.partner or self.record.worked_by
        if partner is None or partner.id != input.partner_id:
            raise _not_a_party("only the partner the complaint is about can respond")
        if self._complaint(input.complaint_id).response is not None:
            raise _invalid_transition("this complaint has already been answered")
        _require_text(input.message, "a message")

    def _complaint(self, complaint_id: str) -> Complaint:
        for complaint in self.record.complaints:
            if complaint.id == complaint_id:
                return complaint
        raise ApplicationError(
            f"complaint {complaint_id} not found", type=NOT_FOUND, non_retryable=True
        )

    # -- quotes ------------------------------------------------------------------------------
    @workflow.update
    async def request_quotes(self, input: RequestQuotesInput) -> CaseRecord:
        """Ops offer a validated case to partners: each gets ProvideQuote (Collecting Quotes)."""
        now = workflow.now()
        record = self.record
        for partner in input.partners:
            record.quotes.append(Quote(id=self._new_id("quote"), partner=partner, requested_at=now))
            self.book.raise_task(
                TaskType.PROVIDE_QUOTE,
                key=f"quote:{partner.id}",
                now=now,
                owner=partner,
                case_id=record.case_id,
                title=f"Quote on case {record.case_number}",
                description=(
                    f"{record.submission.currency_code} {record.submission.amount_to_recover} "
                    f"against {record.submission.debtor.name}: submit your terms or decline."
                ),
            )
        if record.sub_status is None:
            self._change(
                CaseStatus.VALIDATED,
                SubStatus.COLLECTING_QUOTES,
                changed_by=str(input.user_id),
                note="Quotes requested from " + ", ".join(_name(p) for p in input.partners),
            )
        self._touch()
        await self._settled()
        return record

    @request_quotes.validator
    def validate_request_quotes(self, input: RequestQuotesInput) -> None:
        record = self.record
        if record.status is not CaseStatus.VALIDATED or record.sub_status not in (
            None,
            SubStatus.COLLECTING_QUOTES,
            SubStatus.PENDING_QUOTE_SELECTION,
        ):
            raise _invalid_transition(
                f"quotes are requested for a Validated case; this one is {self._status_label()}"
            )
        if not input.partners:
            raise _failed("name at least one partner")
        asked = {q.partner.id for q in self._open_quotes()}
        again = [_name(p) for p in input.partners if p.id in asked]
        if again or len({p.id for p in input.partners}) != len(input.partners):
            raise _failed(f"already asked: {', '.join(again) or 'a partner is listed twice'}")

    @workflow.update
    async def submit_quote(self, input: SubmitQuoteInput) -> Quote:
        """A partner's terms. The first quote asks the creditor to pick (SelectQuoteWinner); a
        partner reviewing the case may offer custom terms instead of accepting it."""
        now = workflow.now()
        record = self.record
        user = str(input.user_id)
        if record.status is CaseStatus.ASSIGNED:  # custom terms instead of the standard contract
            quote = Quote(id=self._new_id("quote"), partner=input.partner, requested_at=now)
            record.quotes.append(quote)
            record.partner = None
            self.book.solve_open(
                TaskType.REVIEW_NEW_CASE,
                now=now,
                reason="partner offered custom terms",
                user_id=input.user_id,
            )
        else:
            quote = self._open_quote_of(input.partner.id)
        quote.status, quote.answered_at = QuoteStatus.SUBMITTED, now
        quote.fee_percent, quote.terms = input.fee_percent, input.terms
        self.book.solve_open(
            TaskType.PROVIDE_QUOTE,
            key=f"quote:{input.partner.id}",
            now=now,
            reason="quote submitted",
            user_id=input.user_id,
        )
        if record.sub_status is not SubStatus.PENDING_QUOTE_SELECTION:
            self._change(
                CaseStatus.VALIDATED,
                SubStatus.PENDING_QUOTE_SELECTION,
                changed_by=user,
                note=f"{_name(input.partner)} quoted {input.fee_percent}%",
            )
            self.state.first_quote_at, self.state.quote_reminders_sent = now, 0
            self.book.raise_task(
                TaskType.SELECT_QUOTE_WINNER,
                key="select-quote",
                now=now,
                owner=record.creditor,
                case_id=record.case_id,
                title=f"Pick a quote for case {record.case_number}",
                description="Partners have quoted on your case: choose the one to work it.",
            )
        self._touch()
        await self._settled()
        return quote

    @submit_quote.validator
    def validate_submit_quote(self, input: SubmitQuoteInput) -> None:
        if self.record.status is CaseStatus.ASSIGNED:
            self._check_reviewing_partner(input.partner.id)
        else:
            self._open_quote_of(input.partner.id)
        if not 0 < input.fee_percent <= 100:
            raise _failed("feePercent must be greater than 0 and at most 100")

    @workflow.update
    async def decline_quote(self, input: DeclineQuoteInput) -> Quote:
        """An invited partner will not quote; the round may end without quotes."""
        now = workflow.now()
        quote = self._open_quote_of(input.partner_id)
        quote.status, quote.answered_at, quote.decline_reason = (
            QuoteStatus.DECLINED,
            now,
            input.reason,
        )
        self.book.solve_open(
            TaskType.PROVIDE_QUOTE,
            key=f"quote:{input.partner_id}",
            now=now,
            reason=f"declined: {input.reason}",
            user_id=input.user_id,
        )
        self._touch()
        await self._settled()
        return quote

    @decline_quote.validator
    def validate_decline_quote(self, input: DeclineQuoteInput) -> None:
        self._open_quote_of(input.partner_id)
        _require_text(input.reason, "a reason")

    @workflow.update
    async def select_quote(self, input: SelectQuoteInput) -> CaseRecord:
        """The creditor picks a quote: the others are declined and the winner gets the case."""
        now = workflow.now()
        record = self.record
        winner = next(q for q in record.quotes if q.id == input.quote_id)
        for quote in record.quotes:
            if quote is winner:
                quote.status = QuoteStatus.ACCEPTED
            elif quote.status is QuoteStatus.SUBMITTED:
                quote.status = QuoteStatus.REJECTED
            elif quote.status is QuoteStatus.REQUESTED:
                quote.status = QuoteStatus.WITHDRAWN
        self.book.solve_open(TaskType.PROVIDE_QUOTE, now=now, reason="another quote was selected")
        self.book.solve_open(
            TaskType.SELECT_QUOTE_WINNER, now=now, reason="quote selected", user_id=input.user_id
        )
        self.state.first_quote_at = None
        self._assign(
            winner.partner,
            changed_by=str(input.user_id),
            note=f"Quote of {_name(winner.partner)} selected ({winner.fee_percent}%)",
        )
        await self._settled()
        return record

    @select_quote.validator
    def validate_select_quote(self, input: SelectQuoteInput) -> None:
        record = self.record
        if record.sub_status is not SubStatus.PENDING_QUOTE_SELECTION:
            raise _invalid_transition(
                f"a quote is selected while quotes wait for selection; this case is "
                f"{self._status_label()}"
            )
        quote = next((q for q in record.quotes if q.id == input.quote_id), None)
        if quote is None or quote.status is not QuoteStatus.SUBMITTED:
            raise ApplicationError(
                f"no submitted quote {input.quote_id} on this case",
                type=NOT_FOUND,
                non_retryable=True,
            )

    def _open_quotes(self) -> list[Quote]:
        return [
            q
            for q in self.record.quotes
            if q.status in (QuoteStatus.REQUESTED, QuoteStatus.SUBMITTED)
        ]

    def _open_quote_of(self, partner_id: UUID) -> Quote:
        record = self.record
        quote = next(
            (
                q
                for q in record.quotes
                if q.partner.id == partner_id and q.status is QuoteStatus.REQUESTED
            ),
            None,
        )
        if quote is None or record.status is not CaseStatus.VALIDATED:
            raise _not_a_party("your organisation has no open invitation to quote on this case")
        return quote

    def _run_quote_round(self, now: dt.datetime) -> None:
        """Remind the creditor to pick, and end a round nobody quoted in or nobody picked from."""
        record, state = self.record, self.state
        if record.status is not CaseStatus.VALIDATED:
            return
        if record.sub_status is SubStatus.COLLECTING_QUOTES:
            waiting = [
                t
                for t in self.book.open_tasks()
                if t.type is TaskType.PROVIDE_QUOTE and t.overdue_since is None
            ]
            if not waiting:
                self._change(
                    CaseStatus.CLOSED,
                    None,
                    changed_by=ChangedBy.SYSTEM,
                    note="No partner quoted within the quote window",
                    close_code=CloseCode.NO_QUOTES_RECEIVED,
                )
            return
        first = state.first_quote_at
        if record.sub_status is not SubStatus.PENDING_QUOTE_SELECTION or first is None:
            return
        task = self.book.find_open(TaskType.SELECT_QUOTE_WINNER)
        while (
            state.quote_reminders_sent < len(QUOTE_SELECTION_REMINDERS)
            and now >= first + QUOTE_SELECTION_REMINDERS[state.quote_reminders_sent]
        ):
            state.quote_reminders_sent += 1
            self.book.emit(
                "task.reminder",
                now=now,
                org_id=record.creditor.id,
                case_id=record.case_id,
                payload={
                    "taskId": task.id if task else None,
                    "taskType": TaskType.SELECT_QUOTE_WINNER.value,
                    "reminder": state.quote_reminders_sent,
                },
            )
        if now >= first + QUOTES_EXPIRE_AFTER:
            for quote in record.quotes:
                if quote.status is QuoteStatus.SUBMITTED:
                    quote.status = QuoteStatus.EXPIRED
            self._change(
                CaseStatus.CLOSED,
                None,
                changed_by=ChangedBy.SYSTEM,
                note="No quote was selected in time",
                close_code=CloseCode.QUOTES_EXPIRED,
            )

    def _chase_unpaid_commission(self) -> None:
        """An overdue RecordPayment: the commission invoice is unpaid, ChasePayment (once)."""
        record_payment = self.book.find_open(TaskType.RECORD_PAYMENT)
        if record_payment is None or record_payment.overdue_since is None:
            return
        partner = self.record.worked_by
        if partner is None or self.book.ever_raised("chase-commission"):
            return
        self.book.raise_task(
            TaskType.CHASE_PAYMENT,
            key="chase-commission",
            now=workflow.now(),
            owner=partner,
            case_id=self.record.case_id,
            title=f"Chase the commission on case {self.record.case_number}",
            description="The commission invoice is unpaid past its deadline: chase it.",
        )

    def _new_id(self, kind: str) -> str:
        self.state.entity_seq += 1
        return task_id(self.book.workflow_id, f"{kind}#{self.state.entity_seq}")

    # -- chat ----------------------------------------------------------------------------------
    @workflow.update
    async def post_message(self, input: PostMessageInput) -> ChatMessage:
        """A message in one of the case's threads: recorded, the other party gets a chat task,
        the sender's own is solved; a creditor answering a hold that waits for them resumes it."""
        record, state = self.record, self.state
        now = workflow.now()
        partner = self._thread_partner(input)
        state.message_seq += 1
        message = ChatMessage(
            id=task_id(self.book.workflow_id, f"message#{state.message_seq}"),
            seq=state.message_seq,
            case_id=record.case_id,
            thread_type=input.thread_type,
            partner_id=partner.id,
            role=ROLE_OF[input.party],
            org_id=input.org_id,
            user_id=input.user_id,
            body=input.body,
            attachment_ids=input.attachment_ids,
            created_at=now,
        )
        state.pending_messages.append(message)
        sender = record.creditor if input.party is Party.CREDITOR else partner
        route_message(
            self.book,
            message,
            sender=input.party,
            recipient=partner if input.party is Party.CREDITOR else record.creditor,
            now=now,
            title=f"{input.thread_type.value}: {_name(sender)} wrote on case {record.case_number}",
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
            raise _failed(f"a message has at most {MAX_ATTACHMENTS_PER_MESSAGE} attachments")

    def _thread_partner(self, input: PostMessageInput) -> OrgRef:
        """The partner side of the thread a message goes to; refuses senders who are not in it."""
        record = self.record
        if input.party is Party.CREDITOR and input.org_id != record.creditor.id:
            raise _not_a_party("only the case's creditor writes on its creditor side")
        if input.thread_type is ThreadType.INVOICE_CHAT:
            partner = record.partner
            if partner is None:
                raise _invalid_transition("the Invoice Chat opens once a partner has the case")
            if input.party is Party.PARTNER and partner.id != input.org_id:
                raise _not_a_party("only the partner working the case writes in its Invoice Chat")
            return partner
        if input.thread_type is ThreadType.GENERAL:
            raise _failed("the general chat belongs to the relationship, not to a case")
        partner_id = input.org_id if input.party is Party.PARTNER else input.partner_id
        if partner_id is None:
            raise _failed(f"a {input.thread_type.value} message names the partner (partnerId)")
        allowed = (
            (QuoteStatus.SUBMITTED, QuoteStatus.ACCEPTED)
            if input.thread_type is ThreadType.LEAD_CHAT
            else (QuoteStatus.REQUESTED, QuoteStatus.SUBMITTED)
        )
        for quote in reversed(record.quotes):
            if quote.partner.id == partner_id and quote.status in allowed:
                return quote.partner
        raise _not_a_party(
            f"the {input.thread_type.value} of this case is open to partners whose quote is "
            f"{' or '.join(s.value.lower() for s in allowed)}"
        )

    # -- generic tasks --------------------------------------------------------------------------
    @workflow.update
    async def create_generic_task(self, input: GenericTaskInput) -> Task:
        """A hand-made task on this case for one party; it stays open until closed by hand."""
        update = workflow.current_update_info()
        task = self.book.raise_task(
            TaskType.GENERIC,
            key=f"generic:{update.id if update else workflow.now().isoformat()}",
            now=workflow.now(),
            owner=input.owner,
            case_id=self.record.case_id,
            access=input.access_level,
            title=input.title,
            description=input.description,
            deadline=input.deadline,
        )
        await self._settled()
        return task

    # -- queries ------------------------------------------------------------------------------
    @workflow.query
    def get_state(self) -> CaseState:
        """The live state, for ops and tests."""
        return self.state

    # -- the loop's hooks ---------------------------------------------------------------------
    async def _advance(self) -> None:
        await self._send_account_signals()
        await self._send_relationship_links()
        now = workflow.now()
        if self.record.status is CaseStatus.CREATED:
            self._run_intake(now)
        self._raise_due_survey(now)
        self._run_quote_round(now)
        self._chase_unpaid_commission()

    def _wakeups(self) -> list[tuple[dt.datetime, str]]:
        state = self.state
        moments = []
        if state.next_survey_at is not None:
            moments.append((state.next_survey_at, "monthly survey"))
        if (
            state.first_quote_at is not None
            and self.record.sub_status is SubStatus.PENDING_QUOTE_SELECTION
        ):
            sent = state.quote_reminders_sent
            if sent < len(QUOTE_SELECTION_REMINDERS):
                moments.append(
                    (
                        state.first_quote_at + QUOTE_SELECTION_REMINDERS[sent],
                        f"quote reminder {sent + 1}",
                    )
                )
            moments.append((state.first_quote_at + QUOTES_EXPIRE_AFTER, "quotes expire"))
        return moments

    def _finished(self) -> bool:
        """A Resolved or Closed case ends once nothing is open or waiting to be sent."""
        return (
            self.record.status in FINISHED
            and not self.book.open_tasks()
            and not self.state.account_outbox
            and not self.state.relationship_outbox
        )

    def _run_intake(self, now: dt.datetime) -> None:
        record = self.record
        issues = self.state.validation_issues
        if issues:
            task = self.book.raise_task(
                TaskType.CASE_VALIDATION_NEEDS_INFO,
                key=VALIDATION_KEY,
                now=now,
                owner=record.creditor,
                case_id=record.case_id,
                title=f"Complete the data of case {record.case_number}",
                description="",
            )
            self.book.retitle(
                task, task.title, "; ".join(f"{i.field}: {i.message}" for i in issues)
            )
        else:
            self.book.solve_open(
                TaskType.CASE_VALIDATION_NEEDS_INFO,
                now=now,
                reason="case data corrected and revalidated",
            )
        blocker = self._intake_blocker()
        if blocker is None:
            self._record_status(
                CaseStatus.VALIDATED,
                None,
                changed_by=ChangedBy.SYSTEM,
                note="All intake checks passed",
            )
        elif blocker is not record.sub_status:
            self._record_status(
                CaseStatus.CREATED,
                blocker,
                changed_by=ChangedBy.SYSTEM,
                note=f"Waiting: {blocker.value}",
            )

    def _intake_blocker(self) -> SubStatus | None:
        if self.state.validation_issues:
            return SubStatus.VALIDATION_NEEDS_INFO
        if not self.state.contract_confirmed:
            return SubStatus.PENDING_CONTRACT_SIGNING
        if self.record.bank_account is None:
            return SubStatus.PENDING_BANK_ACCOUNT
        return None

    def _revalidate(self) -> None:
        self.state.validation_issues = validate_case(
            self.record.submission, self.record.bank_account
        )

    def _queue_account(self, name: AccountSignalName, *, needs_bank_account: bool = False) -> None:
        self.state.account_outbox.append(
            AccountSignal(
                creditor=self.record.creditor,
                name=name,
                event=CaseAccountEvent(
                    case_id=self.record.case_id, needs_bank_account=needs_bank_account
                ),
            )
        )
        self._touch()

    async def _send_account_signals(self) -> None:
        while self.state.account_outbox:
            signal = self.state.account_outbox[0]
            await workflow.execute_activity_method(
                AccountActivities.signal_creditor_account,
                signal,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=SIGNAL_RETRY,
                summary=f"{signal.name} → creditor account",
            )
            self.state.account_outbox.pop(0)

    async def _send_relationship_links(self) -> None:
        while self.state.relationship_outbox:
            link = self.state.relationship_outbox[0]
            await workflow.execute_activity_method(
                AccountActivities.link_relationship,
                link,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=SIGNAL_RETRY,
                summary="link → relationship",
            )
            self.state.relationship_outbox.pop(0)

    def _dirty(self) -> bool:
        return (
            super()._dirty()
            or bool(self.state.account_outbox)
            or bool(self.state.relationship_outbox)
        )

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
        workflow.upsert_search_attributes(
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

    def _publish(self) -> None:
        """Search attributes and the current details shown in the Temporal UI."""
        self._publish_task_attributes()
        record = self.record
        lifecycle = lifecycle_of(record.status, record.sub_status)
        workflow.set_current_details(
            f"**{self._status_label()}** ({lifecycle.value})\n\n"
            f"Case {record.case_number} · creditor {record.creditor.id}"
            + (f" · partner {record.partner.id}" if record.partner else "")
            + f"\n\nOpen tasks:\n{self._task_lines()}\n\n"
            f"Projected version {self.state.projected_version} of {self.state.version}"
        )

    async def _project(self) -> None:
        """Write everything changed since the last projection to the read model."""
        while self.state.projected_version < self.state.version:
            version = self.state.version
            history = list(self.state.pending_history)
            messages = list(self.state.pending_messages)
            tasks, events = self.book.unprojected()
            await workflow.execute_activity_method(
                ProjectionActivities.project_case,
                CaseProjection(
                    version=version,
                    modified_at=workflow.now(),
                    case=self.record.model_copy(deep=True),
                    new_history=history,
                    tasks=tasks,
                    events=events,
                    messages=messages,
                ),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=PROJECTION_RETRY,
                summary=f"project v{version}",
            )
            self.state.projected_version = max(self.state.projected_version, version)
            del self.state.pending_history[: len(history)]
            del self.state.pending_messages[: len(messages)]
            self.book.projected(tasks, events)

    def _continue_as_new(self) -> None:
        workflow.continue_as_new(CaseWorkflowInput(record=self.record, state=self.state))
