"""When the workflows notify someone by e-mail (SPEC.md "Notifications"), and what they hand the
e-mail's composer.

Two rules keep a durable timer in the workflow that already hears of what they are about
(workflows/notices.py, ``Debounced``) and move its moment later with each new occurrence:

- **A partner wrote** (``PARTNER_BURST_QUIET``): the case's (or the relationship's general
  chat's) partner messages form a burst until none came for 10 minutes; then one e-mail per
  burst goes to the creditor. A creditor message ends the burst early, with no e-mail, only when
  it answers every thread the burst's messages are in (``PartnerBurst.answered``).
- **Cases without a bank account** (``BANK_ACCOUNT_DIGEST_DELAY``): the creditor's cases
  created without one form a batch until none came for an hour; then one digest lists those
  still lacking one (none: no e-mail).

When the moment passes, the workflow starts a ``NoticeWorkflow`` (child, abandoned) with a
``Notice``; so does a task owner for each escalation-ladder step that fires (``StepNotice``):
it composes the e-mail from the read model (activities/notices.py) and sends it
through ``workflows.mail.send``, with the notice's idempotency key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field

from domain.base import ApiModel
from domain.escalation import StepNotice

PARTNER_BURST_QUIET = dt.timedelta(minutes=10)
BANK_ACCOUNT_DIGEST_DELAY = dt.timedelta(hours=1)
COMPOSE_EMAIL = "compose_email"
COMPOSE_TIMEOUT = dt.timedelta(seconds=30)


def thread_key(thread_type: str, partner_id: UUID) -> str:
    """A chat thread of a burst: its type (``ThreadType``) and partner side."""
    return f"{thread_type}:{partner_id}"


class PartnerBurst(ApiModel):
    """The partner messages since the last e-mail (or answer) of one thread owner: a case's
    threads, or a relationship's general chat. Kept in the owner's state (carried over
    continue-as-new) until its e-mail is handed to a ``NoticeWorkflow``."""

    first_seq: int  # the owner's message numbering (``message_seq``)
    last_seq: int
    last_message_id: str
    last_at: dt.datetime
    # The threads with a partner message of the burst that the creditor has not written in
    # since: a burst whose threads are all answered sends nothing.
    unanswered: list[str] = []

    @property
    def due(self) -> dt.datetime:
        return self.last_at + PARTNER_BURST_QUIET

    @classmethod
    def partner_wrote(
        cls, burst: PartnerBurst | None, *, seq: int, message_id: str, at: dt.datetime, thread: str
    ) -> PartnerBurst:
        """``burst`` with a new partner message (a new burst if None): its moment moves."""
        burst = burst or cls(first_seq=seq, last_seq=seq, last_message_id=message_id, last_at=at)
        burst.last_seq, burst.last_message_id, burst.last_at = seq, message_id, at
        if thread not in burst.unanswered:
            burst.unanswered.append(thread)
        return burst

    def answered(self, thread: str) -> bool:
        """The creditor wrote in ``thread``; True when that answers every thread of the burst
        (the creditor has read them all: the e-mail is not sent)."""
        if thread in self.unanswered:
            self.unanswered.remove(thread)
        return not self.unanswered


class BankAccountBatch(ApiModel):
    """The creditor's cases created without a bank account since the last digest."""

    cases: list[UUID] = []
    last_at: dt.datetime

    @property
    def due(self) -> dt.datetime:
        return self.last_at + BANK_ACCOUNT_DIGEST_DELAY


class PartnerWroteNotice(ApiModel):
    """A burst is over: e-mail the creditor the partner messages ``first_seq``..``last_seq`` of
    the case (or of the relationship's general chat)."""

    kind: Literal["partner_wrote"] = "partner_wrote"
    case_id: UUID | None = None
    relationship_id: UUID | None = None
    first_seq: int
    last_seq: int
    last_message_id: str

    @property
    def idempotency_key(self) -> str:
        return f"partner-wrote:{self.case_id or self.relationship_id}:{self.last_message_id}"


class BankAccountDigestNotice(ApiModel):
    """A batch is over: e-mail the creditor's users the cases that still lack a bank account."""

    kind: Literal["bank_account_digest"] = "bank_account_digest"
    creditor_id: UUID
    cases: list[UUID] = Field(min_length=1)

    @property
    def idempotency_key(self) -> str:
        return f"bank-account-digest:{self.creditor_id}:{self.cases[-1]}"


# A ladder step that fired (``StepNotice``, domain/escalation.py) is a notice too: the owner
# hands it to a ``NoticeWorkflow`` the same way, so SMTP never holds the owner up.
Notice = Annotated[
    PartnerWroteNotice | BankAccountDigestNotice | StepNotice, Field(discriminator="kind")
]


class NoticeInput(ApiModel):
    notice: Notice


def notice_workflow_id(idempotency_key: str) -> str:
    """The id of the ``NoticeWorkflow`` that sends the notice with ``idempotency_key``."""
    return f"notice-{hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]}"
