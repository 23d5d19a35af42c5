"""``CaseWorkflow``: the single writer of one case's lifecycle (id ``case-{caseId}``).

Intake: Created → validation (CaseValidationNeedsInfo until corrected) → waits for a signed
contract (SignContract, on the creditor's account workflow) and a bank account (AssignBankAccount,
likewise) → Validated → Assigned to a partner (ReviewNewCase) → accepted (In Collection) or
rejected (back to Validated).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.accounts import AccountActivities
    from activities.projection import ProjectionActivities
    from domain import search_attributes as sa
    from domain.accounts import AccountSignal, AccountSignalName, CaseAccountEvent
    from domain.cases import (
        AssignBankAccountInput,
        AssignPartnerInput,
        CaseProjection,
        CaseRecord,
        CaseState,
        CaseWorkflowInput,
        ChangeStatusInput,
        CorrectCaseInput,
        GenericTaskInput,
        HistoryEntry,
        PartnerDecisionInput,
        SubmitCaseInput,
    )
    from domain.enums import CaseStatus, ChangedBy, SubStatus
    from domain.errors import CASE_NOT_EDITABLE, INVALID_TRANSITION, VALIDATION_FAILED
    from domain.ids import case_workflow_id
    from domain.lifecycle import lifecycle_of
    from domain.tasks import ResolvedBy, Task, TaskType
    from domain.transitions import SUB_STATUSES, CloseCode, Mover, allowed_targets, may_move
    from domain.validation import validate_case
    from workflows.base import TaskOwnerWorkflow
    from workflows.retry import PROJECTION_RETRY, SIGNAL_RETRY

VALIDATION_KEY = "validation"
CLOSED_STATUSES = (CaseStatus.RESOLVED, CaseStatus.CLOSED)


def _invalid_transition(message: str) -> ApplicationError:
    return ApplicationError(message, type=INVALID_TRANSITION, non_retryable=True)


@workflow.defn
class CaseWorkflow(TaskOwnerWorkflow):
    """Owns one case: status, history, tasks and their deadlines."""

    @workflow.init
    def __init__(self, input: CaseWorkflowInput) -> None:
        self.state = input.state or CaseState(record=input.record)
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
        if self.record.status in CLOSED_STATUSES:
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
        self.record.partner = partner
        self._record_status(
            CaseStatus.ASSIGNED,
            SubStatus.PARTNER_REVIEWING,
            changed_by=str(input.user_id),
            note=f"Assigned to {partner.name or partner.id}",
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
        await self._settled()
        return self.record

    @assign_partner.validator
    def validate_assign_partner(self, input: AssignPartnerInput) -> None:
        if self.record.status is not CaseStatus.VALIDATED or self.record.sub_status is not None:
            raise _invalid_transition(
                f"only a Validated case ready for assignment can be assigned; this one is "
                f"{self._status_label()}"
            )

    @workflow.update
    async def accept_case(self, input: PartnerDecisionInput) -> CaseRecord:
        """The assigned partner accepts: the case goes In Collection."""
        self._record_status(
            CaseStatus.IN_COLLECTION,
            None,
            changed_by=str(input.user_id),
            note="Accepted by partner",
        )
        self.book.solve_open(
            TaskType.REVIEW_NEW_CASE,
            now=workflow.now(),
            reason="case accepted",
            user_id=input.user_id,
        )
        await self._settled()
        return self.record

    @workflow.update
    async def reject_case(self, input: PartnerDecisionInput) -> CaseRecord:
        """The assigned partner rejects (with a reason): the case is Validated again."""
        partner = self.record.partner
        self.record.partner = None
        self._record_status(
            CaseStatus.VALIDATED,
            None,
            changed_by=str(input.user_id),
            note=f"Rejected by {partner.name if partner else 'partner'}: {input.reason}",
        )
        self.book.solve_open(
            TaskType.REVIEW_NEW_CASE,
            now=workflow.now(),
            reason=f"case rejected: {input.reason}",
            user_id=input.user_id,
        )
        await self._settled()
        return self.record

    @accept_case.validator
    def validate_accept_case(self, input: PartnerDecisionInput) -> None:
        self._check_reviewing_partner(input)

    @reject_case.validator
    def validate_reject_case(self, input: PartnerDecisionInput) -> None:
        self._check_reviewing_partner(input)
        if not (input.reason or "").strip():
            raise ApplicationError(
                "a reason is required", type=VALIDATION_FAILED, non_retryable=True
            )

    def _check_reviewing_partner(self, input: PartnerDecisionInput) -> None:
        if (
            self.record.status is not CaseStatus.ASSIGNED
            or self.record.partner_id != input.partner_id
        ):
            raise _invalid_transition(
                f"only the assigned partner can accept or reject a case under review; this one is "
                f"{self._status_label()}"
            )

    # -- status changes -------------------------------------------------------------------------
    @workflow.update
    async def change_status(self, input: ChangeStatusInput) -> CaseRecord:
        """Move the case as the transition table allows (partner update, withdrawal, ops)."""
        if input.status is CaseStatus.CLOSED:
            self.record.close_code = input.close_code
        asked_before = self._needs_more_info()
        self._record_status(
            input.status, input.sub_status, changed_by=str(input.user_id), note=input.note
        )
        if self._needs_more_info() and not asked_before:
            self._ask_creditor_for_more_info(input.note)
        elif asked_before and not self._needs_more_info():
            self.book.solve_open(
                TaskType.MORE_INFO_NEEDED,
                now=workflow.now(),
                reason="case left Needs Additional Details",
            )
        if input.status is CaseStatus.IN_COLLECTION:  # e.g. accepted after asking for more info
            self.book.solve_open(
                TaskType.REVIEW_NEW_CASE,
                now=workflow.now(),
                reason="case accepted",
                user_id=input.user_id,
            )
        if input.status in CLOSED_STATUSES:
            self._end_open_work(f"case {input.status.value.lower()}")
        await self._settled()
        return self.record

    @change_status.validator
    def validate_change_status(self, input: ChangeStatusInput) -> None:
        current = self.record.status
        if input.mover is Mover.PARTNER and self.record.partner_id != input.org_id:
            raise _invalid_transition("only the partner the case is assigned to can change it")
        if not may_move(input.mover, current, input.status):
            allowed = ", ".join(s.value for s in allowed_targets(input.mover, current)) or "none"
            raise _invalid_transition(
                f"a {input.mover.value} cannot move a case from {self._status_label()} to "
                f"{input.status.value}; allowed from here: {allowed}"
            )
        if input.sub_status not in SUB_STATUSES.get(input.status, (None,)):
            raise ApplicationError(
                f"{input.sub_status.value if input.sub_status else 'no sub-status'} is not a "
                f"sub-status of {input.status.value}",
                type=VALIDATION_FAILED,
                non_retryable=True,
            )
        if input.status is CaseStatus.CLOSED and input.close_code is None:
            raise ApplicationError(
                "closing needs a closeCode", type=VALIDATION_FAILED, non_retryable=True
            )
        if input.close_code is CloseCode.PAID:
            # Payments are not recorded yet (issue 4, item 7), so none can cover the amount.
            raise ApplicationError(
                "close code Paid needs recorded payments covering the amount to recover",
                type=VALIDATION_FAILED,
                non_retryable=True,
            )

    def _needs_more_info(self) -> bool:
        return (
            self.record.status is CaseStatus.ON_HOLD
            and self.record.sub_status is SubStatus.MORE_INFO_REQUIRED
        )

    def _ask_creditor_for_more_info(self, note: str | None) -> None:
        creditor = self.record.creditor
        self.book.raise_task(
            TaskType.MORE_INFO_NEEDED,
            key="more-info",
            now=workflow.now(),
            owner=creditor,
            case_id=self.record.case_id,
            title=f"The partner needs more information on case {self.record.case_number}",
            description=note or "Answer the partner in the case chat.",
        )

    def _end_open_work(self, reason: str) -> None:
        """A finished case: its open tasks are solved and its creditor account stops waiting."""
        for task in self.book.open_tasks():
            self.book.solve(task, now=workflow.now(), by=ResolvedBy(kind="system", reason=reason))
        self._queue_account("case_closed")

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
        record = self.record
        if record.status is not CaseStatus.CREATED:
            return
        now = workflow.now()
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

    def _dirty(self) -> bool:
        return super()._dirty() or bool(self.state.account_outbox)

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
                ),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=PROJECTION_RETRY,
                summary=f"project v{version}",
            )
            self.state.projected_version = max(self.state.projected_version, version)
            del self.state.pending_history[: len(history)]
            self.book.projected(tasks, events)

    def _continue_as_new(self) -> None:
        workflow.continue_as_new(CaseWorkflowInput(record=self.record, state=self.state))
