"""Creditor-account payloads: the per-creditor workflow (``creditor-{id}``) and its signals."""

from __future__ import annotations

import datetime as dt
from typing import Literal
from uuid import UUID

from domain.base import ApiModel
from domain.notices import BankAccountBatch
from domain.tasks import OutboxEvent, Task, TaskBookState
from domain.update_ids import AppliedUpdate


class OrgRef(ApiModel):
    """An organisation as workflows need it: id, display name and calendar."""

    id: UUID
    name: str = ""
    country: str
    timezone: str


class BankAccountRef(ApiModel):
    id: UUID
    currency_code: str


AccountSignalName = Literal["case_opened", "bank_account_assigned", "case_closed"]


class CaseAccountEvent(ApiModel):
    """Payload of the signals a case sends its creditor's account workflow."""

    case_id: UUID
    needs_bank_account: bool = False
    # ``case_opened`` of a case that knew of the signed contract when it was submitted: it waits
    # for no release.
    contract_signed: bool = False


class AccountSignal(ApiModel):
    """A signal a case queues for its creditor's account workflow (sent by an activity)."""

    creditor: OrgRef
    name: AccountSignalName
    event: CaseAccountEvent


class CreditorState(ApiModel):
    creditor: OrgRef
    version: int = 0
    projected_version: int = 0
    book: TaskBookState = TaskBookState()
    contract_signed_at: dt.datetime | None = None
    contract_signed_by: UUID | None = None
    waiting_for_contract: list[UUID] = []
    missing_bank_account: list[UUID] = []
    to_release: list[UUID] = []  # cases to tell that the contract is signed
    # Cases created without a bank account since the last digest (domain/notices.py).
    bank_account_batch: BankAccountBatch | None = None
    # Client-key update ids applied lately (domain/update_ids.py, workflows/once.py).
    applied_updates: list[AppliedUpdate] = []


class CreditorWorkflowInput(ApiModel):
    creditor: OrgRef
    state: CreditorState | None = None


class SignContractInput(ApiModel):
    user_id: UUID


class AccountView(ApiModel):
    creditor_id: UUID
    contract_signed_at: dt.datetime | None
    cases_waiting_for_contract: int
    cases_missing_bank_account: int


class AccountProjection(ApiModel):
    creditor_id: UUID
    version: int
    contract_signed_at: dt.datetime | None
    tasks: list[Task] = []
    events: list[OutboxEvent] = []
    # Cases to tell that the contract is signed (``CreditorState.to_release``), all or none.
    to_release: list[UUID] = []
