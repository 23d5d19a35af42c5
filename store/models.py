"""Tables of the read model. Workflows own case state; these rows are its projection."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy import false as sa_false
from sqlalchemy import true as sa_true
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, Uuid

from domain.time import as_utc


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC timestamp; SQLite drops the zone, so values are normalised to UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        utc = value.astimezone(dt.UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        return None if value is None else as_utc(value)


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: UtcDateTime(), uuid.UUID: Uuid(), dict[str, Any]: JSON()}


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2))
    timezone: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]
    # Creditor accounts: projected from the account workflow.
    contract_signed_at: Mapped[dt.datetime | None]
    account_version: Mapped[int] = mapped_column(default=0, server_default="0")


class User(Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime]
    # The portal's sign-in (store/passwords.py): an argon2 hash, None until a password is set.
    password_hash: Mapped[str | None] = mapped_column(String(200))
    # When the password last changed: sessions and set-password links issued before it end.
    password_changed_at: Mapped[dt.datetime | None]
    # The user's IANA time zone (their daily summary's morning); None: the organisation's.
    timezone: Mapped[str | None] = mapped_column(String(64))


class SignInFailures(Base):
    """Failed portal sign-ins counted per account (``user:<e-mail>``) and per client address
    (``addr:<ip>``) in a window, shared by every API process (store/passwords.py)."""

    __tablename__ = "sign_in_failures"

    key: Mapped[str] = mapped_column(String(340), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    window_started_at: Mapped[dt.datetime]
    locked_until: Mapped[dt.datetime | None]


class ApiKey(Base):
    """An API key; only the SHA-256 of the secret is stored."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None]


class BankAccount(Base):
    """A creditor's payout account, set on cases so collected money can be paid out."""

    __tablename__ = "bank_accounts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    iban: Mapped[str] = mapped_column(String(34))
    holder_name: Mapped[str] = mapped_column(String(200))
    currency_code: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[dt.datetime]


class Division(Base):
    """A division (department, subsidiary) of a creditor organisation: Debitura's
    ``DivisionDto``. Cases name one with ``creditorDivisionId``. Archived (``archived_at``), it is
    offered to no new case but stays on the cases that name it; deleted only while no case has
    named it (``used``, set in the transaction that reserves such a case: store/divisions.py)."""

    __tablename__ = "divisions"
    __table_args__ = (Index("ix_divisions_creditor_list", "creditor_id", "created_at", "id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    creditor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    company_name: Mapped[str] = mapped_column(String(200))
    registration_number: Mapped[str | None] = mapped_column(String(50))
    address: Mapped[str | None] = mapped_column(String(200))
    zip_code: Mapped[str | None] = mapped_column(String(50))
    state: Mapped[str | None] = mapped_column(String(100))
    city: Mapped[str] = mapped_column(String(100))
    country_code: Mapped[str] = mapped_column(String(2))
    office_email: Mapped[str | None] = mapped_column(String(250))
    office_phone: Mapped[str | None] = mapped_column(String(50))
    archived_at: Mapped[dt.datetime | None]
    used: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class CaseRegistration(Base):
    """Reserves a creditor reference for one case id before its workflow starts.

    The integer id gives the human case number; the unique constraint makes a reference map to
    exactly one case even when two requests race.
    """

    __tablename__ = "case_registrations"
    __table_args__ = (UniqueConstraint("creditor_id", "creditor_reference"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    case_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    creditor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    creditor_reference: Mapped[str] = mapped_column(String(100))
    request_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]


class Case(Base):
    """The read-model row of a case, written only by the case workflow's projection activity."""

    __tablename__ = "cases"
    __table_args__ = (
        UniqueConstraint("creditor_id", "creditor_reference"),
        # debtorName search (a substring match) on PostgreSQL; SQLite scans.
        Index(
            "ix_cases_debtor_name_trgm",
            text("lower(debtor_name) gin_trgm_ops"),
            postgresql_using="gin",
        ).ddl_if(dialect="postgresql"),
        # ... and within one creditor's or partner's cases (btree_gin holds the uuid column).
        *(
            Index(
                f"ix_cases_{side}_debtor_name_trgm",
                f"{side}_id",
                text("lower(debtor_name) gin_trgm_ops"),
                postgresql_using="gin",
            ).ddl_if(dialect="postgresql")
            for side in ("creditor", "partner")
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    version: Mapped[int]
    case_number: Mapped[str] = mapped_column(String(32), unique=True)
    creditor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    partner_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"))
    submitted_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    creditor_reference: Mapped[str] = mapped_column(String(100))
    currency_code: Mapped[str] = mapped_column(String(3))
    amount_to_recover: Mapped[Decimal] = mapped_column(Numeric(15, 2))
    date: Mapped[dt.date]
    due_date: Mapped[dt.date | None]  # optional (Debitura's request model)
    claim_description: Mapped[str] = mapped_column(Text)
    debtor_name: Mapped[str] = mapped_column(String(200))
    debtor: Mapped[dict[str, Any]]
    bank_account_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("bank_accounts.id"))
    # The creditor's division the case was submitted for (``creditorDivisionId``), if any.
    creditor_division_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("divisions.id"))
    # The assigned partner's name as the case was assigned (the list shows it without a join).
    partner_name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(32))
    sub_status: Mapped[str | None] = mapped_column(String(64))
    last_status_change: Mapped[dt.datetime]
    close_code: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime] = mapped_column(index=True)
    # What happened while the case was worked, as the workflow keeps it (CaseDetails): quotes,
    # payments, commission payments, complaints, the partner review, who must act while On Hold.
    details: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")


# The case list's order (newest first, then id), for each side that lists cases, with and
# without a status (a status filter, or a lifecycle of one status, reads in index order too).
Index("ix_cases_creditor_list", Case.creditor_id, Case.created_at.desc(), Case.id)
Index("ix_cases_partner_list", Case.partner_id, Case.created_at.desc(), Case.id)
Index("ix_cases_list", Case.created_at.desc(), Case.id)
Index(
    "ix_cases_creditor_status_list",
    Case.creditor_id,
    Case.status,
    Case.created_at.desc(),
    Case.id,
)
Index("ix_cases_partner_status_list", Case.partner_id, Case.status, Case.created_at.desc(), Case.id)
Index("ix_cases_status_list", Case.status, Case.created_at.desc(), Case.id)
# The ``DivisionIds`` filter, in the list's order; partial, so a case without a division (every
# case until a creditor makes divisions) costs the index nothing. A division belongs to one
# creditor, so this one index serves a creditor's list and ops' alike.
Index(
    "ix_cases_division_list",
    Case.creditor_division_id,
    Case.created_at.desc(),
    Case.id,
    postgresql_where=Case.creditor_division_id.is_not(None),
    sqlite_where=Case.creditor_division_id.is_not(None),
)


class CaseInvitation(Base):
    """A partner invited to quote on a case, while its quote is open: such a partner sees the case
    (a lead) until the creditor picks a quote or the round ends. Written by the projection."""

    __tablename__ = "case_invitations"

    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    partner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id"), primary_key=True, index=True
    )


class CaseHistory(Base):
    """Append-only status history; ``seq`` numbers a case's changes from 1."""

    __tablename__ = "case_history"

    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(primary_key=True)
    timestamp: Mapped[dt.datetime]
    status: Mapped[str] = mapped_column(String(32))
    sub_status: Mapped[str | None] = mapped_column(String(64))
    changed_by: Mapped[str] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)


class IdempotencyRecord(Base):
    """The first response to a POST carrying an ``Idempotency-Key``, replayed on retries."""

    __tablename__ = "idempotency_keys"

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None]
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime]


# ``TaskRow.sort_deadline`` of a task without a deadline: after every real one (business dates
# end in 2099, ``domain.plausible``), so "no deadline last" is a plain ascending order.
NO_DEADLINE = dt.datetime(9999, 12, 31, tzinfo=dt.UTC)
# The order of the task queue; every index below ends in it, so a page is read in index order.
_TASK_ORDER = ("sort_deadline", "date_created", "id")
# What every non-ops task list filters on first (``store.tasks.visible_tasks``).
_TASK_OWNER = ("owner_org_id", "access_level", "case_visible")


class TaskRow(Base):
    """A task as its owning workflow last projected it."""

    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_queue", *_TASK_OWNER, *_TASK_ORDER),
        # overdue_since rides along, so overdue=true is answered from the index alone.
        Index(
            "ix_tasks_queue_status",
            *_TASK_OWNER,
            "status",
            *_TASK_ORDER,
            postgresql_include=["overdue_since"],
        ),
        Index("ix_tasks_queue_type", *_TASK_OWNER, "type", *_TASK_ORDER),
        Index("ix_tasks_queue_assignee", *_TASK_OWNER, "assignee_id", *_TASK_ORDER),
        # The task lists read Open tasks unless asked for more (issue 12): a type, an assignee
        # or overdue=false together with the status is read in index order, not filtered.
        Index("ix_tasks_queue_type_status", *_TASK_OWNER, "type", "status", *_TASK_ORDER),
        Index(
            "ix_tasks_queue_assignee_status", *_TASK_OWNER, "assignee_id", "status", *_TASK_ORDER
        ),
        Index(
            "ix_tasks_queue_status_not_overdue",
            *_TASK_OWNER,
            "status",
            *_TASK_ORDER,
            postgresql_where=text("overdue_since IS NULL"),
            sqlite_where=text("overdue_since IS NULL"),
        ),
        Index("ix_tasks_order", *_TASK_ORDER),
        Index("ix_tasks_status_order", "status", *_TASK_ORDER),
        Index("ix_tasks_case", "case_id"),
        # The nightly chat cleanup's keyset order (activities/cleanup.py).
        Index("ix_tasks_overdue", "status", "overdue_since", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    version: Mapped[int]
    workflow_id: Mapped[str] = mapped_column(String(100))
    # The situation the task stands for (e.g. a chat task's thread), unique among open tasks.
    key: Mapped[str | None] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10))
    access_level: Mapped[str] = mapped_column(String(10))
    scope: Mapped[str] = mapped_column(String(10))
    owner_org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    case_id: Mapped[uuid.UUID | None]
    relationship_id: Mapped[uuid.UUID | None]
    deadline: Mapped[dt.datetime | None]
    # ``deadline``, or NO_DEADLINE: the queue's sort key, which an index supplies.
    sort_deadline: Mapped[dt.datetime]
    original_deadline: Mapped[dt.datetime | None]
    date_created: Mapped[dt.datetime]
    date_solved: Mapped[dt.datetime | None]
    overdue_since: Mapped[dt.datetime | None]
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    resolved_by: Mapped[dict[str, Any] | None]
    # The escalation ladder's steps that fired ([{step, at, deadline}], domain/escalation.py).
    escalations: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # Kept by ``store.tasks.refresh_case_tasks`` from the task's case: its creditor reference,
    # and whether the owner still sees the case (``store.cases.visible_to_org``; True without
    # a case). Stored so the queue needs neither a join nor a subquery per row.
    case_reference: Mapped[str | None] = mapped_column(String(100))
    case_visible: Mapped[bool] = mapped_column(Boolean, default=True, server_default=sa_true())


class OutboxEventRow(Base):
    """Events for webhooks, written in the same transaction as the projection that caused them."""

    __tablename__ = "outbox_events"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    type: Mapped[str] = mapped_column(String(40), index=True)
    org_id: Mapped[uuid.UUID | None]
    case_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    occurred_at: Mapped[dt.datetime]
    payload: Mapped[dict[str, Any]]
    delivered_at: Mapped[dt.datetime | None]


class Relationship(Base):
    """A creditor-partner pair, linked when the partner first gets one of the creditor's cases.
    Inserted by the projection of the case that links the pair first (version 0), then written
    by the pair's RelationshipWorkflow projection (docs/decisions/0015)."""

    __tablename__ = "relationships"
    __table_args__ = (UniqueConstraint("creditor_id", "partner_id"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    version: Mapped[int]
    creditor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    linked_at: Mapped[dt.datetime]


class ChatMessageRow(Base):
    """A chat message, written by the projection of the workflow that owns its thread."""

    __tablename__ = "chat_messages"
    __table_args__ = (
        Index("ix_chat_messages_case_thread", "case_id", "thread_type", "partner_id", "seq"),
        Index("ix_chat_messages_relationship", "relationship_id", "seq"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    seq: Mapped[int]
    case_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("cases.id"))
    relationship_id: Mapped[uuid.UUID | None]
    thread_type: Mapped[str] = mapped_column(String(40))
    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    role: Mapped[str] = mapped_column(String(10))
    org_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"))
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(Text)
    attachment_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime]


class Attachment(Base):
    """A file uploaded to a case; the bytes are in the blob store under ``storage_key``."""

    __tablename__ = "attachments"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    # A case's file, or (case_id null) a file of a creditor-partner pair's relationship chat.
    case_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("cases.id"), index=True)
    relationship_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("relationships.id"), index=True
    )
    # The partner side of the thread it was uploaded for: only that partner may download it.
    partner_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organisations.id"))
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime]


class CaseNote(Base):
    """A note or a call a partner logged on a case (creditors read them)."""

    __tablename__ = "case_notes"
    __table_args__ = (Index("ix_case_notes_case_created", "case_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"))
    kind: Mapped[str] = mapped_column(String(10))  # "note" or "call"
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    body: Mapped[str | None] = mapped_column(Text)
    call_duration_seconds: Mapped[int | None]
    call_outcome: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[dt.datetime]


class CasePaymentRow(Base):
    """A debtor payment of a case (``CaseDetails.payments``), one row each so that
    ``GET /api/payments`` pages them in SQL; the projection writes them with the case row."""

    __tablename__ = "case_payments"
    __table_args__ = (Index("ix_case_payments_recorded", "recorded_at", "case_id", "id"),)

    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # unique within its case
    amount: Mapped[Decimal] = mapped_column(Numeric(15, 2))
    paid_on: Mapped[dt.date]
    paid_to: Mapped[str] = mapped_column(String(20))
    recorded_at: Mapped[dt.datetime]


class WebhookSubscription(Base):
    """An organisation's webhook subscription (Debitura's ``WebhookDto``). The signing secret
    (Standard Webhooks, ``whsec_…``) is shown only at creation and on regeneration."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id"), index=True)
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(JSON)  # event types subscribed to
    secret: Mapped[str] = mapped_column(String(100))
    is_active: Mapped[bool] = mapped_column(Boolean)
    is_test_mode: Mapped[bool] = mapped_column(Boolean)
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    consecutive_failures: Mapped[int] = mapped_column(Integer)
    created_utc: Mapped[dt.datetime]
    updated_utc: Mapped[dt.datetime]


class WebhookSubscriptionsVersion(Base):
    """One row (``id`` 1): a number the database changes with every insert or delete of a webhook
    subscription and every update of its ``is_active``, ``org_id`` or ``events`` (triggers of
    migration 0017, in the writing transaction). The projection's fan-out reads it with the
    statement that writes its events and keeps the active subscriptions in memory while it
    stays the same (store/webhooks.py ``fan_out``). No row: no change since it was made."""

    __tablename__ = "webhook_subscriptions_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger)


class WebhookDelivery(Base):
    """One event for one subscription: the delivery log (Debitura's ``WebhookEventDto``).
    Written in the projection's transaction for each active subscription allowed to see the
    event; ``seq`` (insertion order) orders one case's events, since a case's projections
    run one after another. ``next_attempt_at`` is when the next attempt is due (None once
    delivered or given up: ``failed_at``). ``id`` derives from the subscription and the event
    (``domain.webhooks.delivery_id``), so a projection that runs again writes no delivery
    twice; a replay is a row of its own (``replay_of``: the delivery it repeats)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "subscription_id", "next_attempt_at", "seq"),
        Index("ix_webhook_deliveries_case", "subscription_id", "case_id", "seq"),
        Index("ix_webhook_deliveries_delivered", "delivered_at"),
        Index("ix_webhook_deliveries_failed", "failed_at"),
    )

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    id: Mapped[str] = mapped_column(String(36), unique=True)  # the log's public id
    subscription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE")
    )
    event_id: Mapped[str] = mapped_column(String(200))  # outbox_events.id (or a test event's)
    replay_of: Mapped[str] = mapped_column(String(36), default="")  # "" unless a replay
    case_id: Mapped[uuid.UUID | None]
    event_type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]]  # the body sent, as this subscriber may see it
    created_at: Mapped[dt.datetime]
    next_attempt_at: Mapped[dt.datetime | None]
    delivered_at: Mapped[dt.datetime | None]
    failed_at: Mapped[dt.datetime | None]
    attempt_count: Mapped[int] = mapped_column(Integer)
    last_response_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class SentEmail(Base):
    """A recipient's copy of an e-mail (activities/mail.py), by its ``Message-ID``: ``outcome``
    "claimed" while an attempt sends it (since ``claimed_at``; other attempts keep off until
    ``claim_expires_at``), then "sent", or "refused" when
    the SMTP server refused the address for good (``finished_at``). No address is kept."""

    __tablename__ = "sent_emails"

    message_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), index=True)
    category: Mapped[str] = mapped_column(String(40))
    outcome: Mapped[str] = mapped_column(String(10))
    claimed_at: Mapped[dt.datetime]
    claim_expires_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime | None]


class CleanupVerdict(Base):
    """A classifier's verdict that a stale chat task still needs a reply (or that it could not
    tell), kept so the nightly cleanup does not ask a model about the same unchanged thread
    every night (activities/cleanup.py): reused while ``classifier`` and the owning workflow's
    last message seq (``seen_seq``) are unchanged and it is younger than the reuse limit."""

    __tablename__ = "cleanup_verdicts"

    task_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    classifier: Mapped[str] = mapped_column(String(200))
    seen_seq: Mapped[int | None] = mapped_column(Integer)
    reply_expected: Mapped[bool]
    confident: Mapped[bool]
    reason: Mapped[str] = mapped_column(Text)
    decided_at: Mapped[dt.datetime] = mapped_column(index=True)


class DailySummaryMark(Base):
    """A partner user's daily summary of ``local_date`` (the user's date) is done: sent, or
    there was nothing to send (``tasks`` 0). The hourly job (activities/digests.py) skips the
    users it finds here for their today, so a run catching up a missed hour, or overlapping
    another, never looks at them again."""

    __tablename__ = "daily_summary_marks"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    local_date: Mapped[dt.date] = mapped_column(primary_key=True)
    tasks: Mapped[int] = mapped_column(Integer)
    done_at: Mapped[dt.datetime]


class OverdueReminderMark(Base):
    """A user's latest overdue reminder: the date its 7 days started (``period_start``, the
    run's UTC date, part of its idempotency key) and whether it has gone out (``sent``; written
    False before sending, so a run retried or re-run within the 7 days finishes that reminder
    under the same key rather than starting another)."""

    __tablename__ = "overdue_reminder_marks"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    period_start: Mapped[dt.date]
    sent: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[dt.datetime]


class NotificationPreference(Base):
    """A user's choice for one e-mail category (domain.mail.MailCategory), where they made one:
    no row means the category is on (store/preferences.py)."""

    __tablename__ = "notification_preferences"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    category: Mapped[str] = mapped_column(String(40), primary_key=True)
    enabled: Mapped[bool]
    updated_at: Mapped[dt.datetime]


class OrphanCheck(Base):
    """One run of the orphan check (activities/orphans.py): how many cases it found of each
    kind and the first of them (``findings``: case id, workflow id, kind, status and, for a
    stalled case, its ``NextStepAt``; ids and enums only). ``GET /api/ops/orphans`` shows the
    latest; the worker's ``caseloop_orphan_cases`` gauge reads it; the last few are kept."""

    __tablename__ = "orphan_checks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    checked_at: Mapped[dt.datetime] = mapped_column(index=True)
    waiting_on_nobody: Mapped[int] = mapped_column(Integer)
    stalled: Mapped[int] = mapped_column(Integer)
    ended: Mapped[int] = mapped_column(Integer)
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
