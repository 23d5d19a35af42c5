"""Money and after-care of ``CaseWorkflow``: payments, commission, the partner review, complaints."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.cases import (
        CaseRecord,
        CommissionPayment,
        Complaint,
        FileComplaintInput,
        PartnerReview,
        Payment,
        RecordCommissionInput,
        RecordPaymentInput,
        RespondToComplaintInput,
        ReviewPartnerInput,
    )
    from domain.enums import CaseStatus
    from domain.errors import (
        NOT_FOUND,
        NOTHING_TO_ANSWER,
    )
    from domain.tasks import TaskType
    from domain.transitions import (
        ACTIVE,
        FINISHED,
    )
    from workflows.case_core import (
        CaseCore,
        failed,
        invalid_transition,
        not_a_party,
        require_text,
    )


class AftercareHandlers(CaseCore):
    """Payments while the case is worked; commission, review and complaints around its end."""

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
            raise not_a_party("only the partner working the case records its payments")
        if self.record.status not in (*ACTIVE, CaseStatus.ON_HOLD) or self.record.worked_by is None:
            raise invalid_transition(
                f"payments are recorded while an accepted case is worked; this one is "
                f"{self._status_label()}"
            )
        if input.amount <= 0:
            raise failed("amount must be greater than 0")

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
                type,
                now=now,
                reason="commission payment recorded",
                user_id=input.user_id,
                org_id=input.partner_id,
            )
        self._touch()
        await self._settled()
        return payment

    @record_commission.validator
    def validate_record_commission(self, input: RecordCommissionInput) -> None:
        worked_by = self.record.worked_by
        if worked_by is None or worked_by.id != input.partner_id:
            raise not_a_party("only the partner that worked the case records its commission")
        if not any(
            self.book.find_open(t) for t in (TaskType.RECORD_PAYMENT, TaskType.CHASE_PAYMENT)
        ):
            raise ApplicationError(
                "no commission payment is due on this case",
                type=NOTHING_TO_ANSWER,
                non_retryable=True,
            )
        if input.amount <= 0:
            raise failed("amount must be greater than 0")

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
            TaskType.REVIEW_PARTNER,
            now=now,
            reason="partner reviewed",
            user_id=input.user_id,
            org_id=self.record.creditor.id,
        )
        self._touch()
        await self._settled()
        return self.record

    @review_partner.validator
    def validate_review_partner(self, input: ReviewPartnerInput) -> None:
        if self.record.status not in FINISHED or self.record.worked_by is None:
            raise invalid_transition("a partner is reviewed once a case it worked has ended")
        if self.record.partner_review is not None:
            raise invalid_transition("this case's partner has already been reviewed")
        if not 0 <= input.rating <= 10:
            raise failed("rating must be between 0 and 10")

    @workflow.update
    async def file_complaint(self, input: FileComplaintInput) -> Complaint:
        """The creditor complains about the partner: RespondToComplaint for the partner."""
        record = self.record
        partner = record.worked_by
        assert partner is not None  # the validator checked
        complaint = Complaint(
            id=self._new_id("complaint"),
            partner_id=partner.id,
            message=input.message,
            filed_by=input.user_id,
            filed_at=workflow.now(),
        )
        record.complaints.append(complaint)
        self._raise_task(
            TaskType.RESPOND_TO_COMPLAINT,
            key=f"complaint:{complaint.id}",
            owner=partner,
            title=f"Respond to a complaint on case {record.case_number}",
            description=input.message,
        )
        self._touch()
        await self._settled()
        return complaint

    @file_complaint.validator
    def validate_file_complaint(self, input: FileComplaintInput) -> None:
        if self.record.worked_by is None:
            raise invalid_transition(
                "no partner has worked this case yet (accepted it): there is nobody to "
                "complain about"
            )
        require_text(input.message, "a message")

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
            org_id=input.partner_id,
        )
        self._touch()
        await self._settled()
        return complaint

    @respond_to_complaint.validator
    def validate_respond_to_complaint(self, input: RespondToComplaintInput) -> None:
        complaint = self._complaint(input.complaint_id)
        if complaint.partner_id != input.partner_id:
            raise not_a_party("only the partner the complaint is about can respond")
        if complaint.response is not None:
            raise invalid_transition("this complaint has already been answered")
        require_text(input.message, "a message")

    def _complaint(self, complaint_id: str) -> Complaint:
        for complaint in self.record.complaints:
            if complaint.id == complaint_id:
                return complaint
        raise ApplicationError(
            f"complaint {complaint_id} not found", type=NOT_FOUND, non_retryable=True
        )

    def _chase_unpaid_commission(self) -> None:
        """An overdue RecordPayment: the commission invoice is unpaid, ChasePayment (once)."""
        record_payment = self.book.find_open(TaskType.RECORD_PAYMENT)
        if record_payment is None or record_payment.overdue_since is None:
            return
        partner = self.record.worked_by
        if partner is None or self.book.ever_raised("chase-commission"):
            return
        self._raise_task(
            TaskType.CHASE_PAYMENT,
            key="chase-commission",
            owner=partner,
            title=f"Chase the commission on case {self.record.case_number}",
            description="The commission invoice is unpaid past its deadline: chase it.",
        )
