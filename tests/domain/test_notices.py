"""A burst of partner messages and the creditor's answers (domain/notices.py)."""

from __future__ import annotations

import datetime as dt
import uuid

from domain.chat import ThreadType
from domain.notices import PARTNER_BURST_QUIET, PartnerBurst, thread_key

T0 = dt.datetime(2026, 12, 2, 9, 0, tzinfo=dt.UTC)
INVOICE = thread_key(ThreadType.INVOICE_CHAT, uuid.uuid4())
LEAD = thread_key(ThreadType.LEAD_CHAT, uuid.uuid4())


def test_each_partner_message_moves_the_bursts_moment_and_keeps_its_first_message() -> None:
    burst = PartnerBurst.partner_wrote(None, seq=1, message_id="m1", at=T0, thread=INVOICE)
    later = T0 + dt.timedelta(minutes=3)
    burst = PartnerBurst.partner_wrote(burst, seq=4, message_id="m4", at=later, thread=INVOICE)
    assert (burst.first_seq, burst.last_seq, burst.last_message_id) == (1, 4, "m4")
    assert burst.due == later + PARTNER_BURST_QUIET
    assert burst.unanswered == [INVOICE]


def test_an_answer_ends_the_burst_only_once_every_thread_of_it_is_answered() -> None:
    burst = PartnerBurst.partner_wrote(None, seq=1, message_id="m1", at=T0, thread=INVOICE)
    burst = PartnerBurst.partner_wrote(burst, seq=2, message_id="m2", at=T0, thread=LEAD)
    assert burst.answered(INVOICE) is False, "the lead thread still waits: the e-mail goes"
    assert burst.answered(INVOICE) is False
    assert burst.answered(LEAD) is True
