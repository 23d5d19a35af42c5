"""An e-mail caseloop sends: who gets it, why (its category), which template renders it, and the
portal page it points to. Rules that decide *when* to send (issue 13: bursts, summaries,
reminders, the escalation ladder) build an ``Email`` and run the ``send_email`` activity
(activities/mail.py) with the options below; the activity renders, sends and deduplicates.

Every e-mail carries an idempotency key, chosen by the rule so that the same e-mail always gets
the same key (e.g. ``partner-wrote:<case id>:<id of the burst's last message>``): the
``Message-ID`` of each recipient's copy is derived from it, and a copy whose ``Message-ID`` was
already sent is not sent again.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Sequence
from datetime import timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import EmailStr, Field, JsonValue, field_validator

from domain.base import ApiModel
from domain.enums import OrgKind

# The activity's name and how a workflow runs it (workflows/mail.py, ``send``): each attempt may
# take SEND_EMAIL_TIMEOUT (the SMTP conversations of every recipient, at most MAX_RECIPIENTS);
# attempts are retried without limit (an e-mail is never dropped), backing off to
# SEND_EMAIL_MAX_RETRY_INTERVAL while the SMTP server is down. A worker that dies mid-attempt is
# noticed when the attempt times out, so the timeout is also how late such an e-mail may come.
SEND_EMAIL = "send_email"
SEND_EMAIL_TIMEOUT = timedelta(seconds=60)
SEND_EMAIL_MAX_RETRY_INTERVAL = timedelta(minutes=10)
MAX_RECIPIENTS = 50
# How much longer than its attempt's timeout a claim on a recipient's copy holds off other
# attempts (the activity claims a copy before it talks to the SMTP server): an attempt past its
# timeout may still be running on a worker that lost touch, and must not send alongside.
SEND_CLAIM_MARGIN = timedelta(seconds=15)


class MailCategory(StrEnum):
    """Why someone gets an e-mail (SPEC.md "Notifications"); a user turns categories off one
    by one (issue 13, item 4)."""

    PARTNER_MESSAGES = "partner_messages"  # creditors: a partner wrote in a case
    CONTRACT_REMINDER = "contract_reminder"  # creditors: the contract is still unsigned
    BANK_ACCOUNT_DIGEST = "bank_account_digest"  # creditors: cases without a bank account
    DAILY_SUMMARY = "daily_summary"  # partners: tasks created in the last 24 hours
    OVERDUE_REMINDER = "overdue_reminder"  # everyone: overdue tasks, at most weekly
    DEADLINE_ESCALATION = "deadline_escalation"  # the ladder: before, at and after a deadline


_CREDITORS = frozenset({OrgKind.CREDITOR})
_PARTNERS = frozenset({OrgKind.PARTNER})
_BOTH = _CREDITORS | _PARTNERS


class CategoryInfo(ApiModel):
    """A category: what the preferences page and API call it (``label``), why its recipient
    gets one (``reason``: the footer of every e-mail says it), and the sides whose users get
    it (``sides``): the preferences list only the caller's side's categories. Ops users get
    none (they own no tasks and take part in no case as a party)."""

    label: str
    reason: str
    sides: frozenset[OrgKind]


CATEGORIES: dict[MailCategory, CategoryInfo] = {
    MailCategory.PARTNER_MESSAGES: CategoryInfo(
        label="Messages from collection partners",
        reason="a collection partner wrote in one of your cases",
        sides=_CREDITORS,
    ),
    MailCategory.CONTRACT_REMINDER: CategoryInfo(
        label="Contract-signing reminders",
        reason="your organisation's contract with caseloop is not signed",
        sides=_CREDITORS,
    ),
    MailCategory.BANK_ACCOUNT_DIGEST: CategoryInfo(
        label="Cases without a bank account",
        reason="cases of your organisation have no bank account",
        sides=_CREDITORS,
    ),
    MailCategory.DAILY_SUMMARY: CategoryInfo(
        label="Daily summary of new tasks",
        reason="new tasks were created for your organisation",
        sides=_PARTNERS,
    ),
    MailCategory.OVERDUE_REMINDER: CategoryInfo(
        label="Overdue task reminders",
        reason="tasks of yours or your organisation's are overdue",
        sides=_BOTH,
    ),
    MailCategory.DEADLINE_ESCALATION: CategoryInfo(
        label="Deadline warnings and escalations",
        reason="a task's deadline is near or has passed",
        sides=_BOTH,
    ),
}


def categories_of(role: OrgKind) -> list[MailCategory]:
    """The categories a user of ``role``'s side gets, in the catalogue's order."""
    return [c for c in MailCategory if role in CATEGORIES[c].sides]


# A template's name: a file stem under mail/templates (``<name>.txt`` and ``<name>.html``).
TemplateName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


class Recipient(ApiModel):
    email: EmailStr
    name: str | None = Field(default=None, max_length=200)
    # The caseloop user, where the recipient is one (the preferences slice reads it).
    user_id: uuid.UUID | None = None


class Email(ApiModel):
    """One e-mail, sent to each recipient as a copy of its own (each with its own
    unsubscribe link and ``Message-ID``)."""

    idempotency_key: str = Field(min_length=1, max_length=200)
    category: MailCategory
    to: list[Recipient] = Field(min_length=1, max_length=MAX_RECIPIENTS)
    subject: str = Field(min_length=1, max_length=200)
    template: TemplateName
    # What the template shows (JSON values: a workflow's payloads carry them).
    context: dict[str, JsonValue] = Field(default_factory=dict)
    # The portal page that resolves what the e-mail is about (a task's ``solutionUrl``).
    link: str = Field(min_length=1, max_length=2000, pattern=r"^https?://")

    @field_validator("subject")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if re.search(r"[\r\n]", value):
            raise ValueError("a subject is one line")
        return value

    @field_validator("to")
    @classmethod
    def _distinct(cls, value: list[Recipient]) -> list[Recipient]:
        if len({r.email.lower() for r in value}) != len(value):
            raise ValueError("each recipient once")
        return value


def emails_to(
    recipients: Sequence[Recipient],
    *,
    idempotency_key: str,
    category: MailCategory,
    subject: str,
    template: str,
    context: dict[str, JsonValue],
    link: str,
) -> list[Email]:
    """The e-mails that tell every one of ``recipients`` (none: none): one per at most
    ``MAX_RECIPIENTS`` of them, in their order, all with the same ``idempotency_key``. Each
    copy's ``Message-ID`` derives from the key and its address (``message_id``), so a copy is
    sent once however the recipients are split, and the split may change between attempts."""
    return [
        Email(
            idempotency_key=idempotency_key,
            category=category,
            to=list(recipients[start : start + MAX_RECIPIENTS]),
            subject=subject,
            template=template,
            context=context,
            link=link,
        )
        for start in range(0, len(recipients), MAX_RECIPIENTS)
    ]


class SentEmails(ApiModel):
    """What one attempt of ``send_email`` did with an e-mail's copies."""

    sent: int = 0
    already_sent: int = 0
    refused: int = 0
    # Recipients who turned the e-mail's category off (store/preferences.py): not sent.
    skipped: int = 0


def email_workflow_id(idempotency_key: str) -> str:
    """The id of the ``SendEmailWorkflow`` that sends the e-mail with ``idempotency_key``."""
    return f"email-{hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]}"


def message_id(idempotency_key: str, recipient: str, domain: str) -> str:
    """The ``Message-ID`` of ``recipient``'s copy of the e-mail with ``idempotency_key``: the same
    on every attempt, so a copy is recorded (and receivers can deduplicate) by it."""
    digest = hashlib.sha256(f"{idempotency_key}\0{recipient.lower()}".encode()).hexdigest()
    return f"<{digest[:40]}@{domain}>"
