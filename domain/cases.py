"""Case payloads: what a creditor submits, what the workflow keeps, what the API returns."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated
from uuid import UUID

import pycountry
from pydantic import AfterValidator, EmailStr, Field, model_validator

from domain.accounts import AccountSignal, BankAccountRef, OrgRef
from domain.base import ApiModel
from domain.enums import CaseStatus, ChangedBy, DebtorType, Lifecycle, SubStatus
from domain.tasks import AccessLevel, OutboxEvent, Task, TaskBookState
from domain.transitions import CloseCode, Mover

# Loaded once at import: pycountry reads its data files lazily, which a workflow sandbox forbids.
CURRENCY_CODES = frozenset(currency.alpha_3 for currency in pycountry.currencies)
COUNTRY_CODES = frozenset(country.alpha_2 for country in pycountry.countries)


def _iso_4217(code: str) -> str:
    code = code.upper()
    if code not in CURRENCY_CODES:
        raise ValueError(f"'{code}' is not an ISO 4217 currency code")
    return code


def _iso_3166_alpha2(code: str) -> str:
    code = code.upper()
    if code not in COUNTRY_CODES:
        raise ValueError(f"'{code}' is not an ISO 3166-1 alpha-2 country code")
    return code


CurrencyCode = Annotated[str, AfterValidator(_iso_4217)]
CountryAlpha2 = Annotated[str, AfterValidator(_iso_3166_alpha2)]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]
OptionalText = Annotated[str | None, Field(default=None, max_length=200)]


class Debtor(ApiModel):
    """Who owes the money."""

    type: DebtorType
    name: ShortText
    contact_person: OptionalText = None
    address: OptionalText = None
    city: Annotated[str | None, Field(max_length=100)] = None
    zip_code: Annotated[str | None, Field(max_length=20)] = None
    country_alpha2: CountryAlpha2
    email: EmailStr | None = None


class CaseSubmission(ApiModel):
    """The body of ``POST /api/cases``."""

    creditor_reference: Annotated[str, Field(min_length=1, max_length=100)]
    currency_code: CurrencyCode
    amount_to_recover: Annotated[Decimal, Field(gt=0, max_digits=15, decimal_places=2)]
    date: dt.date
    due_date: dt.date
    claim_description: Annotated[str, Field(min_length=1, max_length=4000)]
    debtor: Debtor
    bank_account_id: UUID | None = None

    @model_validator(mode="after")
    def _due_date_not_before_invoice_date(self) -> CaseSubmission:
        if self.due_date < self.date:
            raise ValueError("dueDate must not be before date")
        return self


class HistoryEntry(ApiModel):
    """One appended change of a case's status."""

    seq: int
    timestamp: dt.datetime
    status: CaseStatus
    sub_status: SubStatus | None = None
    changed_by: str = ChangedBy.SYSTEM.value
    note: str | None = None


class ValidationIssue(ApiModel):
    """Missing or inconsistent case data found by ``domain.validation``."""

    field: str
    message: str


class CaseRecord(ApiModel):
    """Everything the read model stores about a case; the workflow owns it, projections copy it."""

    case_id: UUID
    case_number: str
    creditor: OrgRef
    submitted_by: UUID
    submission: CaseSubmission
    bank_account: BankAccountRef | None = None
    status: CaseStatus = CaseStatus.CREATED
    sub_status: SubStatus | None = None
    last_status_change: dt.datetime | None = None
    partner: OrgRef | None = None
    close_code: CloseCode | None = None
    created_at: dt.datetime | None = None

    @property
    def creditor_id(self) -> UUID:
        return self.creditor.id

    @property
    def partner_id(self) -> UUID | None:
        return self.partner.id if self.partner else None


class CaseProjection(ApiModel):
    """What a projection activity writes: the case as of ``version`` plus new history entries."""

    version: int
    modified_at: dt.datetime
    case: CaseRecord
    new_history: list[HistoryEntry] = []
    tasks: list[Task] = []
    events: list[OutboxEvent] = []


class CaseView(ApiModel):
    """``GET /api/cases/{id}``: the seed-002 status fields plus lifecycle and the case data."""

    case_id: UUID
    case_number: str
    status: CaseStatus
    sub_status: SubStatus | None
    lifecycle: Lifecycle
    last_status_change: dt.datetime
    current_stage: str | None
    days_in_current_status: int
    assigned_partner: str | None
    close_code: str | None
    creditor_reference: str
    currency_code: str
    amount_to_recover: Decimal
    date: dt.date
    due_date: dt.date
    claim_description: str
    debtor: Debtor
    bank_account_id: UUID | None
    date_created: dt.datetime
    last_modified: dt.datetime


class CaseState(ApiModel):
    """The whole state of a case workflow, handed over intact on continue-as-new."""

    record: CaseRecord
    # `version` counts changes the read model must see; `projected_version` is what it has seen.
    version: int = 0
    projected_version: int = 0
    history_seq: int = 0
    # History entries not yet written to the read model; cleared once projected, so the state
    # stays small however long the case lives.
    pending_history: list[HistoryEntry] = []
    book: TaskBookState = TaskBookState()
    # Intake: the creditor account confirms the contract; signals to it wait here until sent.
    contract_confirmed: bool = False
    account_outbox: list[AccountSignal] = []
    validation_issues: list[ValidationIssue] = []


class CaseWorkflowInput(ApiModel):
    """Start argument of ``CaseWorkflow``: a new case, or the carried state on continue-as-new."""

    record: CaseRecord
    state: CaseState | None = None


class SubmitCaseInput(ApiModel):
    """Argument of the ``submit`` update sent with the start: who submitted the case."""

    requested_by: UUID


class CorrectCaseInput(ApiModel):
    """The corrected case data (whole, already validated by the API) and who corrected it."""

    submission: CaseSubmission
    user_id: UUID


class AssignBankAccountInput(ApiModel):
    bank_account: BankAccountRef
    user_id: UUID


class AssignPartnerInput(ApiModel):
    partner: OrgRef
    user_id: UUID


class PartnerDecisionInput(ApiModel):
    """A partner accepting (no reason needed) or rejecting (reason required) a case."""

    partner_id: UUID
    user_id: UUID
    reason: str | None = None


class ChangeStatusInput(ApiModel):
    """A status change asked for by a user (partner status update, creditor withdrawal, ops)."""

    mover: Mover
    org_id: UUID
    user_id: UUID
    status: CaseStatus
    sub_status: SubStatus | None = None
    close_code: CloseCode | None = None
    note: str | None = None


class GenericTaskInput(ApiModel):
    owner: OrgRef
    access_level: AccessLevel
    title: str
    description: str
    deadline: dt.datetime | None = None
    user_id: UUID
