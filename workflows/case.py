"""``CaseWorkflow``: the single writer of one case's lifecycle (id ``case-{caseId}``).

Intake: Created → validation (CaseValidationNeedsInfo until corrected) → waits for a signed
contract (SignContract, on the creditor's account workflow) and a bank account (AssignBankAccount,
likewise) → Validated → Assigned to a partner (ReviewNewCase) → accepted (In Collection) or
rejected (back to Validated).

After acceptance: status changes checked against the transition table, holds with their tasks,
the monthly survey, and finishing (Resolved/Closed); the workflow completes once a finished case
has no open task. Quotes, money and after-care, and chat are handler groups in
``case_quotes``, ``case_aftercare`` and ``case_chat``, sharing ``case_core.CaseCore``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.accounts import AccountActivities
    from activities.projection import ProjectionActivities
    from domain import search_attributes as sa
    from domain.accounts import AccountSignal
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
        PartnerDecisionInput,
        ResumeInput,
        SubmitCaseInput,
        SurveyInput,
        SurveyOutcome,
    )
    from domain.enums import CaseStatus, ChangedBy, SubStatus
    from domain.errors import (
        CASE_NOT_EDITABLE,
        INVALID_DEADLINE,
        NOTHING_TO_ANSWER,
        VALIDATION_FAILED,
    )
    from domain.ids import case_workflow_id
    from domain.lifecycle import lifecycle_of
    from domain.schedule import QUOTE_SELECTION_REMINDERS, next_survey_after
    from domain.tasks import AccessLevel, Task, TaskType
    from domain.transitions import (
        ACTIVE,
        FINISHED,
        Mover,
    )
    from domain.validation import validate_case
    from domain.waiting import Timer, TimerKind, Waiting, waiting_lines, waiting_of
    from workflows.base import Outbox
    from workflows.case_aftercare import AftercareHandlers
    from workflows.case_chat import ChatHandlers
    from workflows.case_core import (
        failed,
        invalid_transition,
        not_a_party,
        org_name,
        require_text,
    )
    from workflows.case_quotes import QuoteHandlers
    from workflows.chat import message_of
    from workflows.retry import (
        LOCAL_RETRY_THRESHOLD,
        PROJECTION_RETRY,
        PROJECTION_TIMEOUT,
        SIGNAL_RETRY,
        SIGNAL_TIMEOUT,
    )


VALIDATION_KEY = "validation"


@workflow.defn
class CaseWorkflow(QuoteHandlers, AftercareHandlers, ChatHandlers):
    """Owns one case: status, history, tasks and their deadlines."""

    @workflow.init
    def __init__(self, input: CaseWorkflowInput) -> None:
        self.state = input.new_state
        self._init_book(case_workflow_id(self.state.record.case_id))
        self._init_bursts()
        # A digest of the record as this run last projected it (workflow memory, not state).
        self._projected_record: bytes | None = None
        self._said_orphan = False  # logged that the case waits on nobody (workflow memory)

    @workflow.run
    async def run(self, input: CaseWorkflowInput) -> None:
        """Create the case, then serve it: react to actions, keep deadlines, project changes."""
        if self.state.history_seq == 0:
            self.record.created_at = workflow.now()
            self._record_status(
                CaseStatus.CREATED, None, changed_by=ChangedBy.API, note="Case created via API"
            )
            self._revalidate()
            needs_bank_account = self.record.bank_account is None
            if needs_bank_account or not self.state.contract_confirmed:
                # A case that knows of the signed contract and has a bank account is on none
                # of the account's lists: it has nothing to tell it.
                self._queue_account(
                    "case_opened",
                    needs_bank_account=needs_bank_account,
                    contract_signed=self.state.contract_confirmed,
                )
        self._resume_bursts()
        await self._serve()

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
            raise invalid_transition(f"the case is {self.record.status.value}")
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

    @workflow.update
    async def assign_partner(self, input: AssignPartnerInput) -> CaseRecord:
        """Give a validated case to a partner, who gets ReviewNewCase."""
        partner = input.partner
        self._assign(
            partner, changed_by=str(input.user_id), note=f"Assigned to {org_name(partner)}"
        )
        await self._settled()
        return self.record

    @assign_partner.validator
    def validate_assign_partner(self, input: AssignPartnerInput) -> None:
        if self.record.status is not CaseStatus.VALIDATED or self.record.sub_status is not None:
            raise invalid_transition(
                f"only a Validated case ready for assignment can be assigned; this one is "
                f"{self._status_label()}"
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
            org_id=input.partner_id,
        )
        self._change(
            CaseStatus.VALIDATED,
            None,
            changed_by=str(input.user_id),
            note=f"Rejected by {org_name(partner) if partner else 'partner'}: {input.reason}",
        )
        await self._settled()
        return self.record

    @accept_case.validator
    def validate_accept_case(self, input: PartnerDecisionInput) -> None:
        self._check_reviewing_partner(input.partner_id)

    @reject_case.validator
    def validate_reject_case(self, input: PartnerDecisionInput) -> None:
        self._check_reviewing_partner(input.partner_id)
        require_text(input.reason, "a reason")

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
            raise invalid_transition(
                f"only a case On Hold can resume; this one is {self._status_label()}"
            )
        status, sub_status = self._resume_target()
        self._check_change(input.mover, input.org_id, status, sub_status)

    @workflow.update
    async def submit_survey(self, input: SurveyInput) -> CaseRecord:
        """The partner's monthly answer: a progress note, and go on, pause or close."""
        now = workflow.now()
        self.book.solve_open(
            TaskType.UPDATE_CASE_STATUS,
            now=now,
            reason="survey submitted",
            user_id=input.user_id,
            org_id=input.partner_id,
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
            raise not_a_party("only the partner working the case answers its survey")
        if self.book.find_open(TaskType.UPDATE_CASE_STATUS) is None:
            raise ApplicationError(
                "no survey is due on this case", type=NOTHING_TO_ANSWER, non_retryable=True
            )
        require_text(input.note, "a progress note")
        status, sub_status = self._survey_target(input)
        expected = {
            SurveyOutcome.CONTINUE: ACTIVE,
            SurveyOutcome.PAUSE: (CaseStatus.ON_HOLD,),
            SurveyOutcome.CLOSE: FINISHED,
        }[input.outcome]
        if status not in expected:
            raise failed(
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
            self._raise_task(
                TaskType.UPDATE_CASE_STATUS,
                key="survey",
                owner=record.partner,
                title=f"Monthly update on case {record.case_number}",
                description=(
                    "Tell the creditor how collection is going: continue with a progress note, "
                    "pause, or close the case."
                ),
            )
        state.next_survey_at = next_survey_after(state.survey_anchor, now)
        self._touch()

    @workflow.update
    async def create_generic_task(self, input: GenericTaskInput) -> Task:
        """A hand-made task on this case for one party; it stays open until closed by hand."""
        update = workflow.current_update_info()
        task = self._raise_task(
            TaskType.GENERIC,
            key=f"generic:{update.id if update else workflow.now().isoformat()}",
            owner=input.owner,
            access=input.access_level,
            title=input.title,
            description=input.description,
            deadline=input.deadline,
        )
        await self._settled()
        return task

    @create_generic_task.validator
    def validate_create_generic_task(self, input: GenericTaskInput) -> None:
        record = self.record
        sides = {record.creditor.id: AccessLevel.CREDITOR}
        for partner in (record.partner, record.worked_by):
            if partner is not None:
                sides[partner.id] = AccessLevel.PARTNER
        if sides.get(input.owner.id) is not input.access_level:
            raise failed("a Generic task belongs to the case's creditor or its partner")
        if input.deadline is not None and (
            input.deadline.tzinfo is None or input.deadline <= workflow.now()
        ):
            raise ApplicationError(
                "the deadline must be a future time with an offset",
                type=INVALID_DEADLINE,
                non_retryable=True,
            )

    def _recall(self, name: str, arg: Any, result_id: str | None) -> Any:
        """Answers to updates an earlier run applied (workflows/once.py)."""
        record = self.record
        created: dict[str, Sequence[Any]] = {
            "record_payment": record.payments,
            "record_commission": record.commission_payments,
            "file_complaint": record.complaints,
            "respond_to_complaint": record.complaints,
            "submit_quote": record.quotes,
            "decline_quote": record.quotes,
        }
        if name in created:
            return next(item for item in created[name] if item.id == result_id)
        if name == "create_generic_task":
            return self.book.get(result_id or "")
        if name == "post_message":
            partner = record.partner.id if record.partner else arg.org_id
            return message_of(
                arg,
                id=result_id or "",
                seq=0,
                now=workflow.now(),
                thread_type=arg.thread_type,
                partner_id=arg.partner_id or partner,
                case_id=record.case_id,
            )
        return record  # every other update answers with the case

    @workflow.query
    def get_state(self) -> CaseState:
        """The live state, for ops and tests."""
        return self.state

    async def _advance(self) -> None:
        now = workflow.now()
        if self.record.status is CaseStatus.CREATED:
            self._run_intake(now)
        self._raise_due_survey(now)
        self._run_quote_round(now)
        self._chase_unpaid_commission()
        self._close_stale_chat_tasks()

    def _wakeups(self) -> list[Timer]:
        state = self.state
        moments = []
        if state.next_survey_at is not None:
            moments.append(Timer(state.next_survey_at, TimerKind.SURVEY, "monthly survey"))
        if (
            state.first_quote_at is not None
            and self.record.sub_status is SubStatus.PENDING_QUOTE_SELECTION
        ):
            sent = state.quote_reminders_sent
            if sent < len(QUOTE_SELECTION_REMINDERS):
                moments.append(
                    Timer(
                        state.first_quote_at + QUOTE_SELECTION_REMINDERS[sent],
                        TimerKind.QUOTE_REMINDER,
                        f"quote reminder {sent + 1}",
                    )
                )
            moments.append(
                Timer(
                    self._quotes_expire_at(state.first_quote_at),
                    TimerKind.QUOTES_EXPIRE,
                    "quotes expire",
                )
            )
        return moments

    def _finished(self) -> bool:
        """A Resolved or Closed case ends once nothing is open (and, as every workflow of
        ``_serve``, once its outboxes are sent)."""
        return self.record.status in FINISHED and not self.book.open_tasks()

    def _run_intake(self, now: dt.datetime) -> None:
        record = self.record
        issues = self.state.validation_issues
        if issues:
            task = self._raise_task(
                TaskType.CASE_VALIDATION_NEEDS_INFO,
                key=VALIDATION_KEY,
                owner=record.creditor,
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

    def _outboxes(self) -> list[Outbox]:
        return [
            Outbox("account_signals", lambda: self.state.account_outbox, self._send_account_signal)
        ]

    async def _send_account_signal(self, signal: AccountSignal) -> None:
        # What the projection carried but did not deliver (workflows/base.py, outboxes). Local:
        # a retry waits on a timer (LOCAL_RETRY_THRESHOLD) and never holds an answer.
        await workflow.execute_local_activity_method(
            AccountActivities.signal_creditor_account,
            signal,
            start_to_close_timeout=SIGNAL_TIMEOUT,
            retry_policy=SIGNAL_RETRY,
            local_retry_threshold=LOCAL_RETRY_THRESHOLD,
            summary=f"{signal.name} → creditor account",
        )

    def waiting(self) -> Waiting:
        """What the case waits on now (domain/waiting.py): its sides and its next step."""
        record = self.record
        return waiting_of(
            record.status, record.sub_status, self.book.open_tasks(), self._timers(), workflow.now()
        )

    def _publish(self) -> None:
        """Search attributes (the tasks', and what the case waits on: one upsert) and the
        current details shown in the Temporal UI."""
        record = self.record
        waiting = self.waiting()
        next_step = waiting.next_step
        self._upsert(
            [
                sa.WAITING_ON.value_set(waiting.waiting_on),
                sa.NEXT_STEP_AT.value_set(next_step.at)
                if next_step is not None
                else sa.NEXT_STEP_AT.value_unset(),
            ]
        )
        self._publish_task_attributes()
        if waiting.orphan and not self._said_orphan:
            workflow.logger.warning("the case waits on nobody: no open task and no timer")
        self._said_orphan = waiting.orphan
        lifecycle = lifecycle_of(record.status, record.sub_status)
        partner = record.partner or record.worked_by
        lines = self._waiting_lines(waiting)  # none for a finished case with nothing open
        workflow.set_current_details(
            f"**{self._status_label()}** ({lifecycle.value})\n\n"
            f"Case {record.case_number} · creditor {org_name(record.creditor)}"
            + (f" · partner {org_name(partner)}" if partner else "")
            + ("\n\n" + "\n".join(f"- {line}" for line in lines) if lines else "")
            + f"\n\nOpen tasks:\n{self._task_lines()}\n\n"
            f"Projected version {self.state.projected_version} of {self.state.version}"
        )

    @workflow.query
    def waiting_in_words(self) -> list[str]:
        """What the case waits on, in words (as its current details say): for ``caseloop case
        explain``."""
        return self._waiting_lines(self.waiting())

    def _waiting_lines(self, waiting: Waiting) -> list[str]:
        return waiting_lines(waiting, self._org_names(), timezone=self.record.creditor.timezone)

    def _org_names(self) -> dict[UUID, str]:
        """The case's organisations by id, by name (organisation names only)."""
        record = self.record
        orgs = [q.partner for q in record.quotes]
        orgs += [org for org in (record.worked_by, record.partner) if org is not None]
        return {org.id: org_name(org) for org in (*orgs, record.creditor)}

    async def _project(self) -> None:
        """Write what changed since the last projection to the read model: new history,
        messages, changed tasks and events, and the case record only when it changed since the
        record this run last wrote (a fresh run, or a replay, writes it once)."""
        if self.state.projected_version < self.state.version:  # the main loop comes back
            version = self.state.version
            history = list(self.state.pending_history)
            messages = list(self.state.pending_messages)
            links = list(self.state.pending_links)
            tasks, events = self.book.unprojected()
            snapshot = hashlib.blake2b(
                self.record.model_dump_json().encode(), digest_size=16
            ).digest()
            changed = snapshot != self._projected_record
            carried = self._carried()
            result = await workflow.execute_local_activity_method(
                ProjectionActivities.project_case,
                CaseProjection(
                    version=version,
                    modified_at=workflow.now(),
                    case_id=self.record.case_id,
                    case=self.record.model_copy(deep=True) if changed else None,
                    new_history=history,
                    tasks=tasks,
                    events=events,
                    messages=messages,
                    account_signals=carried.get("account_signals", []),
                    relationship_links=links,
                ),
                start_to_close_timeout=PROJECTION_TIMEOUT,
                retry_policy=PROJECTION_RETRY,
                local_retry_threshold=LOCAL_RETRY_THRESHOLD,
                summary=f"project v{version}",
            )
            self.book.given(result, now=workflow.now())
            self._delivered(result.sent)
            self._projected_record = snapshot
            self.state.projected_version = max(self.state.projected_version, version)
            del self.state.pending_history[: len(history)]
            del self.state.pending_messages[: len(messages)]
            del self.state.pending_links[: len(links)]
            self.book.projected(tasks, events)

    def _continue_as_new(self) -> None:
        workflow.continue_as_new(CaseWorkflowInput(state=self.state))
