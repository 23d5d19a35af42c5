"""``CreditorWorkflow``: one per creditor account (``creditor-{id}``), owner of account-level tasks.

SignContract: one task for every case of the creditor waiting on a signed contract; signing
releases them all. AssignBankAccount: one task, titled with the number of cases still lacking a
bank account, solved when none is left. Cases reach this workflow through signals sent by an
activity (signal-with-start), and are released by signals back, sent by a local activity in the
workflow task that signs: when ``sign_contract`` answers, every waiting case has its signal.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.accounts import AccountActivities
    from activities.projection import ProjectionActivities
    from domain.accounts import (
        AccountProjection,
        AccountView,
        CaseAccountEvent,
        CreditorState,
        CreditorWorkflowInput,
        SignContractInput,
    )
    from domain.ids import creditor_workflow_id
    from domain.notices import BankAccountBatch, BankAccountDigestNotice, NoticeInput
    from domain.tasks import AccessLevel, TaskType
    from workflows.base import Outbox, TaskOwnerWorkflow
    from workflows.notices import Debounced, start_notice
    from workflows.retry import (
        LOCAL_RETRY_THRESHOLD,
        PROJECTION_RETRY,
        PROJECTION_TIMEOUT,
        RELEASE_TIMEOUT,
        SIGNAL_RETRY,
    )

SIGN_CONTRACT_KEY = "sign-contract"
ASSIGN_BANK_ACCOUNT_KEY = "assign-bank-account"


def bank_account_title(count: int) -> str:
    return f"Assign a bank account to {count} case{'s' if count != 1 else ''}"


@workflow.defn
class CreditorWorkflow(TaskOwnerWorkflow):
    """The account of one creditor: contract and bank-account tasks covering many cases."""

    @workflow.init
    def __init__(self, input: CreditorWorkflowInput) -> None:
        self.state = input.state or CreditorState(creditor=input.creditor)
        self._init_book(creditor_workflow_id(self.state.creditor.id))
        self._digest = Debounced(
            lambda: self.state.bank_account_batch.due if self.state.bank_account_batch else None,
            self._send_bank_account_digest,
            summary="cases without a bank account: e-mail the digest",
        )

    @workflow.run
    async def run(self, input: CreditorWorkflowInput) -> None:
        """Serve the account for as long as it exists (continuing as new when history grows)."""
        if self.state.bank_account_batch is not None:  # carried over continue-as-new
            self._digest.arm()
        await self._serve()

    # -- signals from cases -------------------------------------------------------------------
    @workflow.signal
    def case_opened(self, event: CaseAccountEvent) -> None:
        """A new case: wait for the contract unless signed (released at once if the case did
        not know); count it if it lacks a bank account."""
        changed = False
        if event.contract_signed:
            pass  # the case knew of the signature when it was submitted: nothing to release
        elif self.state.contract_signed_at is not None:
            self._queue_release(event.case_id)
        elif event.case_id not in self.state.waiting_for_contract:
            self.state.waiting_for_contract.append(event.case_id)
            changed = True
        if event.needs_bank_account and event.case_id not in self.state.missing_bank_account:
            self.state.missing_bank_account.append(event.case_id)
            self._batch_without_bank_account(event.case_id)
            changed = True
        if changed:  # a release alone changes nothing the read model shows
            self._touch()

    @workflow.signal
    def bank_account_assigned(self, event: CaseAccountEvent) -> None:
        """A case got its bank account: it no longer counts towards AssignBankAccount."""
        if event.case_id in self.state.missing_bank_account:
            self.state.missing_bank_account.remove(event.case_id)
            self._touch()

    @workflow.signal
    def case_closed(self, event: CaseAccountEvent) -> None:
        """A case ended: it no longer waits for the contract or counts as lacking a bank account."""
        for waiting in (self.state.waiting_for_contract, self.state.missing_bank_account):
            if event.case_id in waiting:
                waiting.remove(event.case_id)
                self._touch()

    # -- the missing-bank-account digest (domain/notices.py) ----------------------------------
    def _batch_without_bank_account(self, case_id: UUID) -> None:
        """A case created without a bank account joins the batch, and the digest's moment
        moves to an hour after it."""
        batch = self.state.bank_account_batch or BankAccountBatch(last_at=workflow.now())
        batch.cases.append(case_id)
        batch.last_at = workflow.now()
        self.state.bank_account_batch = batch
        self._digest.arm()

    async def _send_bank_account_digest(self) -> None:
        """An hour passed since the batch's last case: one digest of its cases that still lack
        a bank account, none if every one got one meanwhile (or ended)."""
        batch = self.state.bank_account_batch
        assert batch is not None
        self.state.bank_account_batch = None  # a case from now on starts the next batch
        lacking = [case for case in batch.cases if case in self.state.missing_bank_account]
        if lacking:
            await start_notice(
                NoticeInput(
                    notice=BankAccountDigestNotice(
                        creditor_id=self.state.creditor.id, cases=lacking
                    )
                )
            )

    def _notifying(self, finishing: bool) -> bool:
        return self._digest.firing

    # -- user actions -------------------------------------------------------------------------
    @workflow.update
    async def sign_contract(self, input: SignContractInput) -> AccountView:
        """The contract is signed (stands in for the e-signature callback): release all cases."""
        if self.state.contract_signed_at is None:
            self.state.contract_signed_at = workflow.now()
            self.state.contract_signed_by = input.user_id
            for case_id in self.state.waiting_for_contract:
                self._queue_release(case_id)
            self.state.waiting_for_contract = []
            self.book.solve_open(
                TaskType.SIGN_CONTRACT,
                now=workflow.now(),
                reason="contract signed",
                user_id=input.user_id,
                org_id=self.state.creditor.id,
            )
            self._touch()
        await self._settled()
        return self.view()

    @workflow.query
    def view(self) -> AccountView:
        """The account as the API shows it."""
        return AccountView(
            creditor_id=self.state.creditor.id,
            contract_signed_at=self.state.contract_signed_at,
            cases_waiting_for_contract=len(self.state.waiting_for_contract),
            cases_missing_bank_account=len(self.state.missing_bank_account),
        )

    @workflow.query
    def get_state(self) -> CreditorState:
        return self.state

    # -- the loop's hooks ---------------------------------------------------------------------
    async def _advance(self) -> None:
        now = workflow.now()
        creditor = self.state.creditor
        waiting = len(self.state.waiting_for_contract)
        if waiting:
            task = self.book.raise_task(
                TaskType.SIGN_CONTRACT,
                key=SIGN_CONTRACT_KEY,
                now=now,
                owner=creditor,
                title="Sign the collection contract",
                description="",
                access=AccessLevel.CREDITOR,
            )
            self.book.retitle(
                task,
                task.title,
                f"{waiting} case{'s' if waiting != 1 else ''} wait for a signed contract "
                "(SDCA / power of attorney) before collection can start.",
            )
        elif self.state.contract_signed_at is None:
            self.book.solve_open(
                TaskType.SIGN_CONTRACT, now=now, reason="no case waits for the contract"
            )
        missing = len(self.state.missing_bank_account)
        if missing:
            task = self.book.raise_task(
                TaskType.ASSIGN_BANK_ACCOUNT,
                key=ASSIGN_BANK_ACCOUNT_KEY,
                now=now,
                owner=creditor,
                title=bank_account_title(missing),
                description="",
                access=AccessLevel.CREDITOR,
            )
            self.book.retitle(
                task,
                bank_account_title(missing),
                "Collected money is paid out to a case's bank account; these cases have none.",
            )
        else:
            self.book.solve_open(
                TaskType.ASSIGN_BANK_ACCOUNT, now=now, reason="every case has a bank account"
            )

    def _outboxes(self) -> list[Outbox]:
        return [Outbox("to_release", lambda: self.state.to_release, self._release)]

    async def _release(self, first: UUID) -> None:
        """Tell every case queued so far that the contract is signed, in one local activity.

        Cases queued with a change (signing) go with its projection (``project_account``
        releases them), in the workflow task that signs, so ``sign_contract`` answers once
        each waiting case has its signal: an action on such a case after the answer sees the
        signed contract (a bank account set then answers with the case Validated). This sends
        what no projection carries (a case that opened after the signing) or did not deliver.
        An external-signal command would instead answer first and cost the account a second
        workflow task for the signal's confirmation. A retry waits on a timer
        (LOCAL_RETRY_THRESHOLD) and never holds the answer.

        The outbox drains one item per send and pops it afterwards (``_drain``): ``first`` is
        ``to_release[0]``, which it pops; the rest of this batch is removed here. Cases queued
        while the activity runs are appended behind the batch and go in the next one."""
        batch = list(self.state.to_release)
        assert batch[0] == first
        await workflow.execute_local_activity_method(
            AccountActivities.release_cases,
            batch,
            start_to_close_timeout=RELEASE_TIMEOUT,
            retry_policy=SIGNAL_RETRY,
            local_retry_threshold=LOCAL_RETRY_THRESHOLD,
            summary=f"contract_signed → {len(batch)} case{'s' if len(batch) != 1 else ''}",
        )
        del self.state.to_release[1 : len(batch)]

    async def _project(self) -> None:
        if self.state.projected_version < self.state.version:  # the main loop comes back
            version = self.state.version
            tasks, events = self.book.unprojected()
            carried = self._carried()
            result = await workflow.execute_local_activity_method(
                ProjectionActivities.project_account,
                AccountProjection(
                    creditor_id=self.state.creditor.id,
                    version=version,
                    contract_signed_at=self.state.contract_signed_at,
                    tasks=tasks,
                    events=events,
                    to_release=carried.get("to_release", []),
                ),
                start_to_close_timeout=PROJECTION_TIMEOUT,
                retry_policy=PROJECTION_RETRY,
                local_retry_threshold=LOCAL_RETRY_THRESHOLD,
                summary=f"project account v{version}",
            )
            self.book.given(result, now=workflow.now())
            self._delivered(result.sent)
            self.book.projected(tasks, events)
            self.state.projected_version = max(self.state.projected_version, version)

    def _publish(self) -> None:
        self._publish_task_attributes()
        signed = self.state.contract_signed_at
        workflow.set_current_details(
            f"**Contract** {'signed ' + signed.isoformat() if signed else 'not signed'}\n\n"
            f"Cases waiting for the contract: {len(self.state.waiting_for_contract)}\n\n"
            f"Cases without a bank account: {len(self.state.missing_bank_account)}\n\n"
            f"Open tasks:\n{self._task_lines()}"
        )

    def _recall(self, name: str, arg: Any, result_id: str | None) -> Any:
        return self.view()  # sign_contract, applied by an earlier run

    def _continue_as_new(self) -> None:
        workflow.continue_as_new(
            CreditorWorkflowInput(creditor=self.state.creditor, state=self.state)
        )

    def _queue_release(self, case_id: UUID) -> None:
        if case_id not in self.state.to_release:
            self._queue("to_release", case_id)
