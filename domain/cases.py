"""Case payloads: what a creditor submits, what the workflow keeps, what the API returns."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum
from typing import Annotated
from uuid import UUID

import pycountry
from pydantic import (
    AfterValidator,
    EmailStr,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from domain.accounts import AccountSignal, BankAccountRef, OrgRef
from domain.base import ApiModel, decimal_json_schema
from domain.chat import ChatMessage, RelationshipLink, ThreadType
from domain.enums import CaseStatus, ChangedBy, DebtorType, Lifecycle, Party, SubStatus
from domain.notices import PartnerBurst
from domain.plausible import InvoiceDate, PlausibleDate, check_payment_term
from domain.tasks import AccessLevel, OutboxEvent, Task, TaskBookState
from domain.transitions import FINISHED, CloseCode, Mover
from domain.update_ids import AppliedUpdate

# ISO 4217 reserves X codes for units that are no country's money (precious metals, bond market
# units, the SDR, the Sucre, the ADB and Arab accounting units, XTS for testing, XXX for "no
# currency"); only these X codes are currencies people pay with.
X_CURRENCIES = frozenset({"XAF", "XCD", "XCG", "XOF", "XPF"})
# Loaded once at import: pycountry reads its data files lazily, which a workflow sandbox forbids.
# pycountry lists the ISO 4217 codes in current use (withdrawn ones such as HRK are not in it).
CURRENCY_CODES = frozenset(
    code
    for code in (currency.alpha_3 for currency in pycountry.currencies)
    if not code.startswith("X") or code in X_CURRENCIES
)
COUNTRY_CODES = frozenset(country.alpha_2 for country in pycountry.countries)


def _iso_4217(code: str) -> str:
    code = code.upper()
    if code not in CURRENCY_CODES:
        raise ValueError(f"'{code}' is not an ISO 4217 code of a currency in current use")
    return code


def _iso_3166_alpha2(code: str) -> str:
    code = code.upper()
    if code not in COUNTRY_CODES:
        raise ValueError(f"'{code}' is not an ISO 3166-1 alpha-2 country code")
    return code


# The schemas list the codes in upper case; any letter case is accepted.
CurrencyCode = Annotated[
    str,
    AfterValidator(_iso_4217),
    WithJsonSchema({"type": "string", "enum": sorted(CURRENCY_CODES)}),
]
CountryAlpha2 = Annotated[
    str,
    AfterValidator(_iso_3166_alpha2),
    WithJsonSchema({"type": "string", "enum": sorted(COUNTRY_CODES)}),
]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]
OptionalText = Annotated[str | None, Field(default=None, max_length=200)]
Note = Annotated[str, Field(min_length=1, max_length=4000)]
# More than 0, at most 13 digits before the point and 2 after it (trailing zeros aside).
Money = Annotated[
    Decimal,
    Field(gt=0, max_digits=15, decimal_places=2),
    decimal_json_schema(
        r"^\+?(0*[1-9][0-9]{0,12}(\.[0-9]{0,2}0*)?|0*\.(0[1-9]|[1-9][0-9]?)0*)$",
        number={"exclusiveMinimum": 0, "maximum": 9999999999999.99, "multipleOf": 0.01},
    ),
]
Rating = Annotated[int, Field(ge=0, le=10)]


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
    amount_to_recover: Money
    date: InvoiceDate  # the invoice date; the API also refuses one after today
    due_date: InvoiceDate | None = None  # optional, as in Debitura's CreateCollectionCaseRequest
    claim_description: Annotated[str, Field(min_length=1, max_length=4000)]
    debtor: Debtor
    bank_account_id: UUID | None = None
    # One of the creditor's divisions that is not archived (the API checks it: store/divisions.py).
    # Left out when there is none, so a submission without one reads, hashes and travels to the
    # workflow exactly as before divisions existed (a worker of an earlier release reads it).
    creditor_division_id: Annotated[UUID | None, Field(exclude_if=lambda v: v is None)] = None

    @field_validator("due_date")
    @classmethod
    def _within_payment_term(cls, due_date: dt.date | None, info: ValidationInfo) -> dt.date | None:
        invoice_date = info.data.get("date")  # absent when the date itself was invalid
        if invoice_date is not None and due_date is not None:
            check_payment_term(invoice_date, due_date)
        return due_date


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


class QuoteStatus(StrEnum):
    REQUESTED = "Requested"  # the partner was invited and has not answered
    SUBMITTED = "Submitted"
    DECLINED = "Declined"  # the partner declined to quote
    ACCEPTED = "Accepted"  # the creditor picked it
    REJECTED = "Rejected"  # the creditor picked another quote
    WITHDRAWN = "Withdrawn"  # the round ended before the partner answered
    EXPIRED = "Expired"  # nobody was picked in time


# A case's lead threads are open to a partner while its quote is in one of these states (the
# workflow checks messages with it, the API uploads).
LEAD_THREAD_QUOTES: dict[ThreadType, tuple[QuoteStatus, ...]] = {
    ThreadType.LEAD_CHAT: (QuoteStatus.SUBMITTED, QuoteStatus.ACCEPTED),
    ThreadType.INVOICE_QUESTIONS_CHAT: (QuoteStatus.REQUESTED, QuoteStatus.SUBMITTED),
}


def thread_open(
    *,
    status: CaseStatus,
    case_partner_id: UUID | None,
    quotes: list[Quote],
    thread_type: ThreadType,
    partner_id: UUID,
) -> bool:
    """Whether a case thread with ``partner_id`` on its partner side is open to both parties:
    no thread of a finished case; the Invoice Chat with the partner holding the case; a lead
    thread with a partner whose quote is in a state of ``LEAD_THREAD_QUOTES``. The workflow
    checks messages with it, the API uploads."""
    if status in FINISHED:
        return False
    if thread_type is ThreadType.INVOICE_CHAT:
        return case_partner_id == partner_id
    allowed = LEAD_THREAD_QUOTES.get(thread_type, ())
    return any(q.partner.id == partner_id and q.status in allowed for q in quotes)


class Quote(ApiModel):
    """A partner's invitation to quote on a case, and its answer."""

    id: str
    partner: OrgRef
    status: QuoteStatus = QuoteStatus.REQUESTED
    requested_at: dt.datetime
    answered_at: dt.datetime | None = None
    fee_percent: Decimal | None = None  # commission on what is collected
    terms: str | None = None
    decline_reason: str | None = None


class Payment(ApiModel):
    """Money the debtor paid, to the creditor directly or to the partner."""

    id: str
    amount: Decimal
    paid_on: dt.date
    paid_to: Party
    note: str | None = None
    recorded_by: UUID
    recorded_at: dt.datetime


class CommissionPayment(ApiModel):
    """The creditor paid the partner's commission invoice (solves RecordPayment/ChasePayment)."""

    id: str
    amount: Decimal
    paid_on: dt.date
    invoice_reference: str | None = None
    recorded_by: UUID
    recorded_at: dt.datetime


class Complaint(ApiModel):
    id: str
    partner_id: UUID  # the partner it is about (the one that worked the case)
    message: str
    filed_by: UUID
    filed_at: dt.datetime
    response: str | None = None
    responded_by: UUID | None = None
    responded_at: dt.datetime | None = None


class PartnerReview(ApiModel):
    partner_id: UUID
    rating: int
    comment: str | None = None
    reviewed_by: UUID
    reviewed_at: dt.datetime


class CaseDetails(ApiModel):
    """What happens to a case once it is worked; the read model keeps it as ``cases.details``."""

    # While On Hold: who must act, and the status resuming returns to.
    waiting_for: Party | None = None
    held_from: CaseStatus | None = None
    held_from_sub_status: SubStatus | None = None
    # The partner that worked the case (kept after closing, for the review and commission).
    worked_by: OrgRef | None = None
    quotes: list[Quote] = []
    payments: list[Payment] = []
    commission_payments: list[CommissionPayment] = []
    complaints: list[Complaint] = []
    partner_review: PartnerReview | None = None

    @classmethod
    def of(cls, record: CaseRecord) -> CaseDetails:
        return cls.model_validate(record.model_dump(include=set(cls.model_fields)))

    @property
    def open_invitations(self) -> list[UUID]:
        """Partners invited to quote whose quote is still open (they see the case as a lead)."""
        return [
            q.partner.id
            for q in self.quotes
            if q.status in (QuoteStatus.REQUESTED, QuoteStatus.SUBMITTED)
        ]


class CaseRecord(CaseDetails):
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
    def paid_amount(self) -> Decimal:
        return sum((p.amount for p in self.payments), Decimal(0))

    @property
    def creditor_id(self) -> UUID:
        return self.creditor.id

    @property
    def partner_id(self) -> UUID | None:
        return self.partner.id if self.partner else None


class CaseProjection(ApiModel):
    """What a projection activity writes: what changed up to ``version``. ``case`` is the whole
    record when it changed since the workflow last projected it, else None (only the row's
    version moves); history entries, messages, tasks and events are the new or changed ones."""

    version: int
    modified_at: dt.datetime
    case: CaseRecord | None = None
    case_id: UUID | None = None  # defaults to case.case_id; required without a case
    new_history: list[HistoryEntry] = []
    tasks: list[Task] = []
    events: list[OutboxEvent] = []
    messages: list[ChatMessage] = []
    # The case's outbox (``CaseState.account_outbox``), delivered by the activity after the
    # write, in order; its result says how many it delivered.
    account_signals: list[AccountSignal] = []
    # Pairs this case linked since the last projection (``CaseState.pending_links``): the
    # activity writes their ``relationships`` rows in its transaction.
    relationship_links: list[RelationshipLink] = []

    @model_validator(mode="after")
    def _names_its_case(self) -> CaseProjection:
        if self.case is not None:
            if self.case_id is None:
                self.case_id = self.case.case_id
            elif self.case_id != self.case.case_id:
                raise ValueError("case_id must be the case's id")
        elif self.case_id is None:
            raise ValueError("a projection names its case: case or case_id")
        return self


class CreditorDivision(ApiModel):
    """Debitura's ``CreditorDivisionDto``: the division a case was submitted for, on the case's
    ``creditor``; ``name`` is the division's ``companyName`` as it is now."""

    id: UUID
    name: str


class CaseCreditor(ApiModel):
    """Debitura's ``CreditorDto`` on a case, with what the case row holds: the creditor
    organisation's id and the case's division (null without one)."""

    id: UUID
    division: CreditorDivision | None


class CollectionPartner(ApiModel):
    """Debitura's ``CollectionPartnerDto``: caseloop shows a partner's name."""

    name: str


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
    waiting_for: Party | None = None  # On Hold: who must act (Creditor or Partner)
    creditor_reference: str
    currency_code: str
    amount_to_recover: Decimal
    date: dt.date
    due_date: dt.date | None
    claim_description: str
    debtor: Debtor
    bank_account_id: UUID | None
    creditor_division_id: UUID | None  # Debitura's InvoiceDto.creditorDivisionId
    creditor: CaseCreditor
    date_created: dt.datetime
    last_modified: dt.datetime

    # Debitura's names (its SDK's ``InvoiceDto``) for what caseloop names above, beside them so
    # that a Debitura client reads its fields (docs/api.md "Differences from Debitura's API"):
    # ``caseId``, ``caseNumber``, ``currencyCode``, ``lastModified``, ``assignedPartner``.
    id: UUID
    reference: str
    currency: str
    date_updated: dt.datetime
    collection_partner: CollectionPartner | None


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
    # Monthly survey: anniversaries of `survey_anchor` (acceptance); the next one is due at
    # `next_survey_at` (None while no survey is scheduled).
    survey_anchor: dt.datetime | None = None
    next_survey_at: dt.datetime | None = None
    # Quote round: when the first quote came, and how many selection reminders went out.
    first_quote_at: dt.datetime | None = None
    quote_reminders_sent: int = 0
    # Continue as new once history reaches this many events (None: when the server suggests).
    history_limit: int | None = None
    entity_seq: int = 0  # ids of quotes, payments and complaints
    # Chat: messages not yet in the read model, and the numbering of the case's messages.
    message_seq: int = 0
    pending_messages: list[ChatMessage] = []
    # Partner messages not yet e-mailed to the creditor (domain/notices.py).
    partner_burst: PartnerBurst | None = None
    # Creditor-partner pairs this case linked, and links not yet in the read model.
    linked_partners: list[UUID] = []
    pending_links: list[RelationshipLink] = []
    # Client-key update ids applied lately (domain/update_ids.py, workflows/once.py).
    applied_updates: list[AppliedUpdate] = []


class CaseWorkflowInput(ApiModel):
    """Start argument of ``CaseWorkflow``: a new case (``record``), or the carried state on
    continue-as-new (``state``, which holds the record: it is not sent twice)."""

    record: CaseRecord | None = None
    state: CaseState | None = None
    history_limit: int | None = None  # for a new case: see CaseState.history_limit
    # For a new case: its creditor had signed the contract when it was submitted (the read
    # model shows a signature only once the account workflow holds it, and signing is final),
    # so the case does not wait for the account to tell it.
    contract_signed: bool = False

    @model_validator(mode="after")
    def _record_or_state(self) -> CaseWorkflowInput:
        if self.record is None and self.state is None:
            raise ValueError("a new case's record or a carried state is required")
        return self

    @property
    def new_state(self) -> CaseState:
        """The state the workflow starts with."""
        if self.state is not None:
            return self.state
        assert self.record is not None  # the validator asks for one of them
        return CaseState(
            record=self.record,
            history_limit=self.history_limit,
            contract_confirmed=self.contract_signed,
        )


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
    waiting_for: Party | None = None  # On Hold / Paused: who must act


class SurveyOutcome(StrEnum):
    CONTINUE = "continue"
    PAUSE = "pause"
    CLOSE = "close"


class SurveyInput(ApiModel):
    """The partner's monthly survey answer: a progress note, and go on, pause or close.

    ``continue`` may change status within In Collection / Payment Plan (e.g. a payment plan was
    agreed); ``pause`` needs ``waitingFor``; ``close`` needs status Resolved or Closed and a
    ``closeCode``.
    """

    partner_id: UUID
    user_id: UUID
    outcome: SurveyOutcome
    note: str
    status: CaseStatus | None = None
    sub_status: SubStatus | None = None
    waiting_for: Party | None = None
    close_code: CloseCode | None = None


class ResumeInput(ApiModel):
    org_id: UUID
    mover: Mover
    user_id: UUID
    note: str | None = None


class RecordPaymentInput(ApiModel):
    partner_id: UUID
    user_id: UUID
    amount: Decimal
    paid_on: PlausibleDate
    paid_to: Party
    note: str | None = None


class RecordCommissionInput(ApiModel):
    partner_id: UUID
    user_id: UUID
    amount: Decimal
    paid_on: PlausibleDate
    invoice_reference: str | None = None


class ReviewPartnerInput(ApiModel):
    user_id: UUID
    rating: int
    comment: str | None = None


class FileComplaintInput(ApiModel):
    user_id: UUID
    message: str


class RespondToComplaintInput(ApiModel):
    partner_id: UUID
    user_id: UUID
    complaint_id: str
    message: str


class RequestQuotesInput(ApiModel):
    partners: list[OrgRef]
    user_id: UUID


class SubmitQuoteInput(ApiModel):
    partner: OrgRef
    user_id: UUID
    fee_percent: Decimal
    terms: str | None = None


class DeclineQuoteInput(ApiModel):
    partner_id: UUID
    user_id: UUID
    reason: str


class SelectQuoteInput(ApiModel):
    quote_id: str
    user_id: UUID


class GenericTaskInput(ApiModel):
    owner: OrgRef
    access_level: AccessLevel
    title: str
    description: str
    deadline: dt.datetime | None = None
    user_id: UUID
