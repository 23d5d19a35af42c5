"""Enumerations shared by every layer. Values are the strings the API returns."""

from enum import StrEnum


class OrgKind(StrEnum):
    """What an organisation is; a user's role is the kind of their organisation."""

    CREDITOR = "creditor"
    PARTNER = "partner"
    OPS = "ops"  # platform staff: see everything, act as the system


class CaseStatus(StrEnum):
    """Primary case status (seed 002)."""

    CREATED = "Created"
    VALIDATED = "Validated"
    ASSIGNED = "Assigned"
    IN_COLLECTION = "In Collection"
    PAYMENT_PLAN = "Payment Plan"
    ON_HOLD = "On Hold"
    RESOLVED = "Resolved"
    CLOSED = "Closed"


class SubStatus(StrEnum):
    """Fine-grained sub-status; the enum can grow, the lifecycle table says where each belongs."""

    PENDING_CONTRACT_SIGNING = "Pending contract signing"
    PENDING_BANK_ACCOUNT = "Pending bank account"
    VALIDATION_NEEDS_INFO = "Validation needs info"
    COLLECTING_QUOTES = "Collecting quotes"
    PENDING_QUOTE_SELECTION = "Pending quote selection"
    PARTNER_REVIEWING = "Partner reviewing"
    FIRST_REMINDER_SENT = "First reminder sent"
    SECOND_REMINDER_SENT = "Second reminder sent"
    LEGAL_PROCEEDINGS_INITIATED = "Legal proceedings initiated"
    NEGOTIATION_IN_PROGRESS = "Negotiation in progress"
    PLAN_ACTIVE = "Plan active"
    PAYMENT_RECEIVED = "Payment received"
    PAYMENT_MISSED = "Payment missed"
    PLAN_DEFAULTED = "Plan defaulted"
    MORE_INFO_REQUIRED = "More info required"
    PAUSED = "Paused"
    PAID_IN_FULL = "Paid in full"
    PARTIAL_PAYMENT_ACCEPTED = "Partial payment accepted"
    SETTLEMENT_REACHED = "Settlement reached"


class Lifecycle(StrEnum):
    """The simpler lifecycle the creditor portal shows (seed 004)."""

    PENDING_VERIFICATION = "Pending Verification"
    ACTIVE = "Active"
    MORE_INFO_REQUIRED = "More Info Required"
    COLLECTING_QUOTES = "Collecting Quotes"
    PENDING_QUOTE_SELECTION = "Pending Quote Selection"
    PAUSED = "Paused"
    CLOSED = "Closed"


class DebtorType(StrEnum):
    COMPANY = "Company"
    PRIVATE = "Private"


class Party(StrEnum):
    """One side of a case: who must act on a paused case, who received a payment."""

    CREDITOR = "Creditor"
    PARTNER = "Partner"


class ChangedBy(StrEnum):
    """Who made a history entry when it was not a named user."""

    API = "API"
    SYSTEM = "System"
