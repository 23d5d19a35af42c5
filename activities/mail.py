"""The ``send_email`` activity: render an ``Email`` (domain/mail.py) for each recipient and send
it through SMTP (``aiosmtplib``), each copy once.

How a rule calls it: from its workflow, ``await workflows.mail.send(email)`` (the timeout and
unlimited retries in one place); from outside a workflow, start ``SendEmailWorkflow`` with the
id ``domain.mail.email_workflow_id(email.idempotency_key)``. ``email.idempotency_key`` must be
the same every time this e-mail is meant (derived from what it is about, never random).

What is guaranteed, per recipient's copy (its ``Message-ID`` is derived from the idempotency key
and the address, domain.mail.message_id):

- An attempt claims the copy in the read model (``sent_emails``, outcome "claimed") before it
  talks to the SMTP server and marks it "sent" once the server accepted it. A later attempt, a
  retried activity or the same e-mail sent again by a re-run, skips a copy marked sent: a
  retry after a failure with some recipients done sends only the rest.
- Two attempts never send a copy at once: a claim lasts the claiming attempt's start-to-close
  timeout plus ``SEND_CLAIM_MARGIN`` (the attempt is over by then), and fails any other attempt
  meanwhile with a retryable ``EmailBeingSent``. A failed SMTP conversation releases the claim at
  once; a worker killed mid-send leaves it, and a later attempt takes the copy over when it
  expires. Nothing is dropped: every
  error but a permanent refusal is retried.
- Not guaranteed: if the worker dies (or the database fails) after the SMTP server accepted a
  copy and before it is marked sent, the copy is sent again. Receivers see the same
  ``Message-ID`` twice and may deduplicate by it. The window is one database write long.
- A recipient who turned the e-mail's category off (store/preferences.py; read once per attempt,
  for all recipients in one statement) is skipped: no claim, no copy, counted ``skipped``.
- A recipient the SMTP server refuses for good (a 5xx answer to its address) is recorded
  "refused" and not retried; the activity succeeds for the others.

Logs name the ``Message-ID`` and category, never an address, a subject or a body.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr

import aiosmtplib
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.mail import SEND_CLAIM_MARGIN, SEND_EMAIL, Email, Recipient, SentEmails, message_id
from mail.render import render
from settings import Settings
from store.db import transaction
from store.models import SentEmail
from store.preferences import turned_off

# A released claim's expiry: past, so the next attempt takes the copy at once.
_RELEASED = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    security: str  # "starttls", "tls" or "none"
    user: str
    password: str | None
    timeout: float
    sender: str
    portal_base_url: str
    # Signs each recipient's unsubscribe link (``Settings.unsubscribe_secret``, mail/render.py).
    unsubscribe_secret: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig:
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            user=settings.smtp_user,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            timeout=settings.smtp_timeout_seconds,
            sender=settings.mail_from,
            portal_base_url=settings.portal_base_url,
            unsubscribe_secret=settings.unsubscribe_secret,
        )

    @property
    def message_id_domain(self) -> str:
        address = parseaddr(self.sender)[1]
        return address.rpartition("@")[2] or "caseloop.localhost"


class MailActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], smtp: SmtpConfig) -> None:
        self._sessions = sessions
        self._smtp = smtp

    @activity.defn(name=SEND_EMAIL)
    async def send_email(self, email: Email) -> SentEmails:
        """Send each recipient's copy of ``email`` that is not sent yet (see the module)."""
        if not self._smtp.host:
            raise ApplicationError("SMTP_HOST is not set: the e-mail waits", type="NoSmtpHost")
        done = SentEmails()
        off = await self._turned_off(email)
        for recipient in email.to:
            if recipient.user_id in off:
                done.skipped += 1
                continue
            mid = message_id(email.idempotency_key, recipient.email, self._smtp.message_id_domain)
            if not await self._claim(mid, email):
                done.already_sent += 1
                continue
            message = self._message(email, recipient, mid)
            try:
                await self._send(message)
            except aiosmtplib.SMTPRecipientsRefused as exc:
                if all(500 <= refusal.code < 600 for refusal in exc.recipients):
                    await self._finish(mid, "refused")
                    activity.logger.warning(
                        "e-mail %s (%s) refused for good: %s",
                        mid,
                        email.category.value,
                        exc.recipients[0].code,
                    )
                    done.refused += 1
                    continue
                await self._release(mid)
                raise
            except BaseException:
                await self._release(mid)
                raise
            await self._finish(mid, "sent")
            activity.logger.info("e-mail %s (%s) sent", mid, email.category.value)
            done.sent += 1
        return done

    async def _turned_off(self, email: Email) -> set[uuid.UUID]:
        """The recipients (user ids) who turned ``email``'s category off."""
        users = [r.user_id for r in email.to if r.user_id is not None]
        if not users:
            return set()
        async with self._sessions() as session:
            return await turned_off(session=session, user_ids=users, category=email.category)

    def _message(self, email: Email, recipient: Recipient, mid: str) -> EmailMessage:
        rendered = render(
            email,
            recipient,
            portal_base_url=self._smtp.portal_base_url,
            unsubscribe_secret=self._smtp.unsubscribe_secret,
        )
        message = EmailMessage()
        message["From"] = self._smtp.sender
        message["To"] = formataddr((recipient.name or "", recipient.email))
        message["Subject"] = email.subject
        message["Date"] = format_datetime(dt.datetime.now(dt.UTC))
        message["Message-ID"] = mid
        message["List-Unsubscribe"] = f"<{rendered.unsubscribe_url}>"
        if rendered.one_click:  # RFC 8058: only a link that takes the POST without a sign-in
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message["Auto-Submitted"] = "auto-generated"
        message["X-Caseloop-Category"] = email.category.value
        message.set_content(rendered.text)
        message.add_alternative(rendered.html, subtype="html")
        return message

    async def _send(self, message: EmailMessage) -> None:
        smtp = self._smtp
        await aiosmtplib.send(
            message,
            hostname=smtp.host,
            port=smtp.port,
            username=smtp.user or None,
            password=smtp.password if smtp.user else None,
            use_tls=smtp.security == "tls",
            start_tls=smtp.security == "starttls",
            timeout=smtp.timeout,
        )

    async def _claim(self, mid: str, email: Email) -> bool:
        """Claim the copy ``mid`` for this attempt; False if it was sent (or refused) already.
        Raises a retryable ``EmailBeingSent`` while another attempt's claim holds."""
        now = dt.datetime.now(dt.UTC)
        timeout = activity.info().start_to_close_timeout or dt.timedelta(0)
        expires = now + timeout + SEND_CLAIM_MARGIN
        try:
            async with transaction(self._sessions) as session:
                row = await session.get(SentEmail, mid)
                if row is None:
                    session.add(
                        SentEmail(
                            message_id=mid,
                            idempotency_key=email.idempotency_key,
                            category=email.category.value,
                            outcome="claimed",
                            claimed_at=now,
                            claim_expires_at=expires,
                        )
                    )
                    return True  # unless a concurrent attempt inserted it first (below)
                if row.outcome != "claimed":
                    return False
                taken = await session.execute(
                    update(SentEmail)
                    .where(
                        SentEmail.message_id == mid,
                        SentEmail.outcome == "claimed",
                        SentEmail.claim_expires_at <= now,
                    )
                    .values(claimed_at=now, claim_expires_at=expires)
                )
                if taken.rowcount == 1:  # type: ignore[attr-defined]
                    return True
        except IntegrityError:
            pass
        raise ApplicationError(
            f"e-mail {mid} is being sent by another attempt", type="EmailBeingSent"
        )

    async def _finish(self, mid: str, outcome: str) -> None:
        async with transaction(self._sessions) as session:
            await session.execute(
                update(SentEmail)
                .where(SentEmail.message_id == mid)
                .values(outcome=outcome, finished_at=dt.datetime.now(dt.UTC))
            )

    async def _release(self, mid: str) -> None:
        try:
            async with transaction(self._sessions) as session:
                await session.execute(
                    update(SentEmail)
                    .where(SentEmail.message_id == mid, SentEmail.outcome == "claimed")
                    .values(claim_expires_at=_RELEASED)
                )
        except Exception:  # the claim then expires by itself; the send's error is what counts
            activity.logger.warning("e-mail %s: its claim could not be released", mid)
