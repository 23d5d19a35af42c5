"""The ``send_email`` activity against a real in-process SMTP server (aiosmtpd)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from pathlib import Path

import aiosmtplib
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.mail import _GroupCommit
from domain.mail import Email, message_id
from mail.sink import KeepInDirectory, list_messages, read_message
from store.models import SentEmail
from tests.mail.conftest import LINK, PORTAL, Sink, mail_activities, partner_wrote, start


async def test_an_email_has_a_stable_message_id_unsubscribe_headers_both_bodies_and_the_link(
    sessions: async_sessionmaker[AsyncSession], sink: Sink
) -> None:
    email = partner_wrote("alice@creditor.example")
    result = await ActivityEnvironment().run(mail_activities(sessions, sink.port).send_email, email)
    assert result.sent == 1
    [stored] = list_messages(sink.directory)
    message = read_message(sink.directory, stored.id)
    assert message is not None
    expected_id = message_id(email.idempotency_key, "alice@creditor.example", "mail.caseloop.test")
    assert message["Message-ID"] == expected_id
    assert expected_id == message_id(
        email.idempotency_key, "Alice@Creditor.example", "mail.caseloop.test"
    ), "the same key and recipient always give the same Message-ID"
    assert message["To"] == "Alice <alice@creditor.example>"
    assert message["From"] == "caseloop <no-reply@mail.caseloop.test>"
    assert message["Subject"] == "Nordic Collect wrote in case CL-1001"
    unsubscribe = f"{PORTAL}/preferences?category=partner_messages"
    # (folded onto a line of its own when long, as RFC 5322 allows)
    assert message["List-Unsubscribe"].strip() == f"<{unsubscribe}>"
    # A recipient who is no caseloop user gets the preferences page, behind sign-in: no RFC 8058
    # one-click POST works there, so none is advertised (tests/mail/test_preferences.py: users').
    assert message["List-Unsubscribe-Post"] is None
    assert message["X-Caseloop-Category"] == "partner_messages"
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    text_body, html_body = text.get_content(), html.get_content()
    for n in range(1, 6):
        assert f"Message {n} <b>" in text_body
        assert f"Message {n} &lt;b&gt;" in html_body, "HTML bodies escape what people wrote"
    assert LINK in text_body and f'href="{LINK}"' in html_body
    assert unsubscribe in text_body and f'href="{unsubscribe}"' in html_body
    assert "a collection partner wrote in one of your cases" in text_body
    assert "Hello Alice," in text_body and "Hello Alice," in html_body


async def test_the_same_email_sent_twice_arrives_once_per_recipient(
    sessions: async_sessionmaker[AsyncSession], sink: Sink
) -> None:
    activities = mail_activities(sessions, sink.port)
    email = partner_wrote("alice@creditor.example", "carl@creditor.example")
    first = await ActivityEnvironment().run(activities.send_email, email)
    again = await ActivityEnvironment().run(activities.send_email, email)
    assert (first.sent, first.already_sent) == (2, 0)
    assert (again.sent, again.already_sent) == (0, 2)
    assert sorted(m.to for m in list_messages(sink.directory)) == [
        "Alice <alice@creditor.example>",
        "Carl <carl@creditor.example>",
    ]
    other = partner_wrote("alice@creditor.example", key="partner-wrote:case-1:msg-9")
    assert (await ActivityEnvironment().run(activities.send_email, other)).sent == 1
    assert sink.received() == 3, "another idempotency key is another e-mail"


class RefusesCarlOnce(KeepInDirectory):
    """Answers 451 (try again later) to carl's address, the first time only."""

    refused = 0

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.startswith("carl@") and not self.refused:
            self.refused += 1
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"


async def test_a_retried_attempt_sends_only_the_copies_the_failed_one_did_not(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    handler = RefusesCarlOnce(tmp_path / "mail")
    server, port = await start(handler)
    async with server:
        activities = mail_activities(sessions, port)
        email = partner_wrote("alice@creditor.example", "carl@creditor.example")
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
            await ActivityEnvironment().run(activities.send_email, email)
        assert len(list_messages(handler.directory)) == 1
        retried = await ActivityEnvironment().run(activities.send_email, email)
        assert (retried.sent, retried.already_sent) == (1, 1)
    assert sorted(m.to for m in list_messages(handler.directory)) == [
        "Alice <alice@creditor.example>",
        "Carl <carl@creditor.example>",
    ]


async def test_a_copy_another_attempt_is_sending_waits_and_an_expired_claim_is_taken_over(
    sessions: async_sessionmaker[AsyncSession], sink: Sink
) -> None:
    """A worker killed mid-send leaves its claim: a retry within the claim fails (retryable),
    one after it sends the copy."""
    email = partner_wrote("alice@creditor.example")
    mid = message_id(email.idempotency_key, "alice@creditor.example", "mail.caseloop.test")
    async with sessions() as session, session.begin():
        session.add(
            SentEmail(
                message_id=mid,
                idempotency_key=email.idempotency_key,
                category=email.category.value,
                outcome="claimed",
                claimed_at=dt.datetime.now(dt.UTC),
                claim_expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1),
            )
        )
    activities = mail_activities(sessions, sink.port)
    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(activities.send_email, email)
    assert raised.value.type == "EmailBeingSent" and not raised.value.non_retryable
    assert sink.received() == 0
    async with sessions() as session, session.begin():
        await session.execute(update(SentEmail).values(claim_expires_at=dt.datetime.now(dt.UTC)))
    assert (await ActivityEnvironment().run(activities.send_email, email)).sent == 1
    assert sink.received() == 1
    async with sessions() as session:
        row = (await session.execute(select(SentEmail))).scalar_one()
    assert row.outcome == "sent" and row.finished_at is not None


async def test_without_an_smtp_host_the_email_waits_and_nothing_is_recorded(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    activities = mail_activities(sessions, 25)
    activities._smtp = type(activities._smtp)(**{**vars(activities._smtp), "host": ""})
    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(activities.send_email, partner_wrote("a@creditor.example"))
    assert raised.value.type == "NoSmtpHost" and not raised.value.non_retryable
    async with sessions() as session:
        assert (await session.execute(select(SentEmail))).first() is None


async def test_logs_name_the_message_id_and_category_but_no_address_or_subject(
    sessions: async_sessionmaker[AsyncSession], sink: Sink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="temporalio.activity")
    email = partner_wrote("alice@creditor.example")
    await ActivityEnvironment().run(mail_activities(sessions, sink.port).send_email, email)
    # What the activity logs (not the test's SMTP server, which logs the whole conversation).
    logged = "\n".join(
        record.getMessage() for record in caplog.records if record.name == "temporalio.activity"
    )
    assert message_id(email.idempotency_key, "alice@creditor.example", "mail.caseloop.test") in (
        logged
    )
    assert "partner_messages" in logged
    assert "alice" not in logged.lower() and "CL-1001" not in logged


@pytest.mark.parametrize(
    "change",
    [
        {"subject": "two\nlines"},
        {"to": []},
        {"to": [{"email": "a@x.example"}, {"email": "A@x.example"}]},
        {"template": "../portal/base"},
        {"link": "javascript:alert(1)"},
        {"category": "marketing"},
    ],
)
def test_an_email_that_cannot_be_sent_safely_is_refused(change: dict[str, object]) -> None:
    fields = partner_wrote("alice@creditor.example").model_dump() | change
    with pytest.raises(ValidationError):
        Email.model_validate(fields)


async def test_claims_made_at_once_share_writes_and_each_gets_its_own_answer() -> None:
    """The send path's group commit: copies claimed while a write is running go in the next
    write, together; a failed write fails exactly its own items."""

    writes: list[list[int]] = []

    async def write(items: list[int]) -> list[int]:
        writes.append(items)
        await asyncio.sleep(0.01)
        if 13 in items:
            raise RuntimeError("refused")
        return [item * 2 for item in items]

    batched = _GroupCommit(write)
    results = await asyncio.gather(*(batched.run(n) for n in range(12)), return_exceptions=True)
    assert results == [n * 2 for n in range(12)]
    assert len(writes) < 12 and sorted(n for w in writes for n in w) == list(range(12))
    failed = await asyncio.gather(batched.run(13), return_exceptions=True)
    assert isinstance(failed[0], RuntimeError)
    assert await batched.run(14) == 28, "the next write is not affected"
