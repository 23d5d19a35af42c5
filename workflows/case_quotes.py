"""Quote rounds of ``CaseWorkflow``: invitations, quotes, the creditor's pick, reminders, expiry."""

from __future__ import annotations

import datetime as dt
from uuid import UUID

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.cases import (
        CaseRecord,
        DeclineQuoteInput,
        Quote,
        QuoteStatus,
        RequestQuotesInput,
        SelectQuoteInput,
        SubmitQuoteInput,
    )
    from domain.enums import CaseStatus, ChangedBy, SubStatus
    from domain.errors import (
        NOT_FOUND,
    )
    from domain.schedule import QUOTE_SELECTION_REMINDERS, QUOTES_EXPIRE_AFTER_DEADLINE
    from domain.tasks import TaskType
    from domain.transitions import (
        CloseCode,
    )
    from workflows.case_core import (
        CaseCore,
        failed,
        invalid_transition,
        not_a_party,
        org_name,
        require_text,
    )


class QuoteHandlers(CaseCore):
    """Invite partners to quote, take their quotes, let the creditor pick one."""

    @workflow.update
    async def request_quotes(self, input: RequestQuotesInput) -> CaseRecord:
        """Ops offer a validated case to partners: each gets ProvideQuote (Collecting Quotes)."""
        now = workflow.now()
        record = self.record
        for partner in input.partners:
            record.quotes.append(Quote(id=self._new_id("quote"), partner=partner, requested_at=now))
            self._raise_task(
                TaskType.PROVIDE_QUOTE,
                key=f"quote:{partner.id}",
                owner=partner,
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
                note="Quotes requested from " + ", ".join(org_name(p) for p in input.partners),
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
            raise invalid_transition(
                f"quotes are requested for a Validated case; this one is {self._status_label()}"
            )
        if not input.partners:
            raise failed("name at least one partner")
        asked = {q.partner.id for q in self._open_quotes()}
        again = [org_name(p) for p in input.partners if p.id in asked]
        if again or len({p.id for p in input.partners}) != len(input.partners):
            raise failed(f"already asked: {', '.join(again) or 'a partner is listed twice'}")

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
                org_id=input.partner.id,
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
            org_id=input.partner.id,
        )
        if record.sub_status is not SubStatus.PENDING_QUOTE_SELECTION:
            self._change(
                CaseStatus.VALIDATED,
                SubStatus.PENDING_QUOTE_SELECTION,
                changed_by=user,
                note=f"{org_name(input.partner)} quoted {input.fee_percent}%",
            )
            self.state.first_quote_at, self.state.quote_reminders_sent = now, 0
            self._raise_task(
                TaskType.SELECT_QUOTE_WINNER,
                key="select-quote",
                owner=record.creditor,
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
            raise failed("feePercent must be greater than 0 and at most 100")

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
            org_id=input.partner_id,
        )
        self._touch()
        await self._settled()
        return quote

    @decline_quote.validator
    def validate_decline_quote(self, input: DeclineQuoteInput) -> None:
        self._open_quote_of(input.partner_id)
        require_text(input.reason, "a reason")

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
            TaskType.SELECT_QUOTE_WINNER,
            now=now,
            reason="quote selected",
            user_id=input.user_id,
            org_id=record.creditor.id,
        )
        self.state.first_quote_at = None
        self._assign(
            winner.partner,
            changed_by=str(input.user_id),
            note=f"Quote of {org_name(winner.partner)} selected ({winner.fee_percent}%)",
        )
        await self._settled()
        return record

    @select_quote.validator
    def validate_select_quote(self, input: SelectQuoteInput) -> None:
        record = self.record
        if record.sub_status is not SubStatus.PENDING_QUOTE_SELECTION:
            raise invalid_transition(
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
            raise not_a_party("your organisation has no open invitation to quote on this case")
        return quote

    def _quotes_expire_at(self, first_quote_at: dt.datetime) -> dt.datetime:
        """A week after the SelectQuoteWinner deadline, so postponing the task postpones expiry
        (until its deadline is known: as if due on the last reminder)."""
        task = self.book.find_open(TaskType.SELECT_QUOTE_WINNER)
        deadline = task.deadline if task is not None and task.deadline is not None else None
        return (
            deadline or first_quote_at + QUOTE_SELECTION_REMINDERS[-1]
        ) + QUOTES_EXPIRE_AFTER_DEADLINE

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
        if now >= self._quotes_expire_at(first):
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
