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

import asyncio
import contextlib
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, parseaddr
from typing import Generic, TypeVar

import aiosmtplib
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.mail import SEND_CLAIM_MARGIN, SEND_EMAIL, Email, Recipient, SentEmails, message_id
from mail.render import render
from observability.metrics import EMAILS
from settings import Settings
from store.db import transaction
from store.models import SentEmail
from store.preferences import turned_off


def _text_header(value: str) -> str:
    """A header of free text: as is in ASCII, else RFC 2047-encoded UTF-8."""
    return value if value.isascii() else Header(value, "utf-8").encode()


def _address(name: str, address: str) -> str:
    return formataddr((name, address), charset="utf-8")


In = TypeVar("In")
Out = TypeVar("Out")
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
        # SQLite has one writer at a time, and a transaction that read before it writes (a
        # claim) fails at once when another wrote meanwhile. Every writer of this process takes
        # its turn at SQLite's write lock in order (store/sqlite_driver.py), but a claim reads
        # first: this process's claim batches queue here, read and write together, so none reads
        # rows another batch is about to write. PostgreSQL: None, no queue.
        engine = sessions.kw.get("bind")
        self._writes: asyncio.Lock | contextlib.AbstractAsyncContextManager[None] = (
            asyncio.Lock()
            if engine is not None and engine.dialect.name == "sqlite"
            else contextlib.nullcontext()
        )
        # Claims and marks of copies being sent at once share a transaction (group commit): many
        # sends at once (the digests) cost a few writes, not two each. Each copy's claim or mark
        # is committed before its ``deliver`` goes on, as when it was a transaction of its own.
        self._claims: _GroupCommit[_Claim, str] = _GroupCommit(self._claim_batch)
        self._finishes: _GroupCommit[tuple[str, str], None] = _GroupCommit(self._finish_batch)

    @property
    def portal_base_url(self) -> str:
        """The portal the e-mails link to (the notices' composer builds its links on it)."""
        return self._smtp.portal_base_url

    @property
    def configured(self) -> bool:
        """An SMTP server is set (``SMTP_HOST``)."""
        return bool(self._smtp.host)

    @activity.defn(name=SEND_EMAIL)
    async def send_email(self, email: Email) -> SentEmails:
        """Send each recipient's copy of ``email`` that is not sent yet (see the module)."""
        return await self.deliver(email)

    async def deliver(self, email: Email, via: aiosmtplib.SMTP | None = None) -> SentEmails:
        """What ``send_email`` does, for an activity that sends many e-mails itself (the digests,
        activities/digests.py): the same claims and ``Message-ID``s, so the same guarantees. It
        runs inside that activity, whose start-to-close timeout bounds each claim. ``via``: an
        open connection to send on (``SmtpPool``); None: a connection of its own."""
        if not self._smtp.host:
            raise ApplicationError("SMTP_HOST is not set: the e-mail waits", type="NoSmtpHost")
        done = SentEmails()
        category = email.category.value
        off = await self._turned_off(email)
        for recipient in email.to:
            if recipient.user_id in off:
                done.skipped += 1
                continue
            mid = message_id(email.idempotency_key, recipient.email, self._smtp.message_id_domain)
            if not await self._claim(mid, email):
                EMAILS.inc(category, "already_sent")
                done.already_sent += 1
                continue
            message = self._message(email, recipient, mid)
            try:
                await self._send(message, via)
            except aiosmtplib.SMTPRecipientsRefused as exc:
                if all(500 <= refusal.code < 600 for refusal in exc.recipients):
                    await self._finish(mid, "refused")
                    activity.logger.warning(
                        "e-mail %s (%s) refused for good: %s",
                        mid,
                        email.category.value,
                        exc.recipients[0].code,
                    )
                    EMAILS.inc(category, "refused")
                    done.refused += 1
                    continue
                EMAILS.inc(category, "failed")
                await self._release(mid)
                raise
            except BaseException:
                EMAILS.inc(category, "failed")
                await self._release(mid)
                raise
            await self._finish(mid, "sent")
            EMAILS.inc(category, "sent")
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

    def _message(self, email: Email, recipient: Recipient, mid: str) -> Message:
        """The copy as MIME (multipart/alternative: text, then HTML; UTF-8), built with the
        ``email`` package's compat32 classes: its modern API parses and refolds every header
        through its header registry, which cost a digest's worker more than rendering, the
        claims and the SMTP conversation together (docs/performance.md)."""
        rendered = render(
            email,
            recipient,
            portal_base_url=self._smtp.portal_base_url,
            unsubscribe_secret=self._smtp.unsubscribe_secret,
        )
        message = MIMEMultipart("alternative")
        message["From"] = _address(*parseaddr(self._smtp.sender))
        message["To"] = _address(recipient.name or "", recipient.email)
        message["Subject"] = _text_header(email.subject)
        message["Date"] = format_datetime(dt.datetime.now(dt.UTC))
        message["Message-ID"] = mid
        message["List-Unsubscribe"] = f"<{rendered.unsubscribe_url}>"
        if rendered.one_click:  # RFC 8058: only a link that takes the POST without a sign-in
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        message["Auto-Submitted"] = "auto-generated"
        message["X-Caseloop-Category"] = email.category.value
        message.attach(MIMEText(rendered.text, "plain", "utf-8"))
        message.attach(MIMEText(rendered.html, "html", "utf-8"))
        return message

    def connection(self) -> aiosmtplib.SMTP:
        """A client for the SMTP server (not connected yet), as ``_send`` would open."""
        smtp = self._smtp
        return aiosmtplib.SMTP(
            hostname=smtp.host,
            port=smtp.port,
            username=smtp.user or None,
            password=smtp.password if smtp.user else None,
            use_tls=smtp.security == "tls",
            start_tls=smtp.security == "starttls",
            timeout=smtp.timeout,
        )

    async def _send(self, message: Message, via: aiosmtplib.SMTP | None = None) -> None:
        if via is not None:
            await via.send_message(message)
            return
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
        claim = _Claim(mid, email, now, now + timeout + SEND_CLAIM_MARGIN)
        outcome = await self._claims.run(claim)
        if outcome == "busy":
            raise ApplicationError(
                f"e-mail {mid} is being sent by another attempt", type="EmailBeingSent"
            )
        return outcome == "claimed"

    async def _claim_batch(self, claims: list[_Claim]) -> list[str]:
        """The claims of copies being sent at once, in one transaction: "claimed" (a new row,
        or an expired claim taken over), "done" (sent or refused) or "busy" (another attempt's
        claim holds; also a copy claimed twice in one batch, or inserted by another process
        meanwhile)."""
        outcomes: dict[int, str] = {}
        async with self._writes, transaction(self._sessions) as session:
            rows = {
                row.message_id: (row.outcome, row.claim_expires_at)
                for row in await session.scalars(
                    select(SentEmail).where(SentEmail.message_id.in_({c.mid for c in claims}))
                )
            }
            new: dict[str, int] = {}
            for n, claim in enumerate(claims):
                found = rows.get(claim.mid)
                if claim.mid in new:
                    outcomes[n] = "busy"
                elif found is None:
                    new[claim.mid] = n
                elif found[0] != "claimed":
                    outcomes[n] = "done"
                elif found[1] > claim.now:
                    outcomes[n] = "busy"
                else:
                    taken = await session.execute(
                        update(SentEmail)
                        .where(
                            SentEmail.message_id == claim.mid,
                            SentEmail.outcome == "claimed",
                            SentEmail.claim_expires_at <= claim.now,
                        )
                        .values(claimed_at=claim.now, claim_expires_at=claim.expires)
                    )
                    taken_one = taken.rowcount == 1  # type: ignore[attr-defined]
                    outcomes[n] = "claimed" if taken_one else "busy"
                    rows[claim.mid] = ("claimed", claim.expires)
            if new:
                dialect = session.get_bind().dialect.name
                insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(
                    SentEmail
                )
                inserted = set(
                    await session.scalars(
                        insert.on_conflict_do_nothing().returning(SentEmail.message_id),
                        [
                            {
                                "message_id": claims[n].mid,
                                "idempotency_key": claims[n].email.idempotency_key,
                                "category": claims[n].email.category.value,
                                "outcome": "claimed",
                                "claimed_at": claims[n].now,
                                "claim_expires_at": claims[n].expires,
                                "finished_at": None,
                            }
                            for n in new.values()
                        ],
                    )
                )
                for mid, n in new.items():
                    outcomes[n] = "claimed" if mid in inserted else "busy"
        return [outcomes[n] for n in range(len(claims))]

    async def _finish(self, mid: str, outcome: str) -> None:
        await self._finishes.run((mid, outcome))

    async def _finish_batch(self, finished: list[tuple[str, str]]) -> list[None]:
        at = dt.datetime.now(dt.UTC)
        async with self._writes, transaction(self._sessions) as session:
            for outcome in {o for _, o in finished}:
                await session.execute(
                    update(SentEmail)
                    .where(SentEmail.message_id.in_([m for m, o in finished if o == outcome]))
                    .values(outcome=outcome, finished_at=at)
                )
        return [None] * len(finished)

    async def _release(self, mid: str) -> None:
        try:
            async with self._writes, transaction(self._sessions) as session:
                await session.execute(
                    update(SentEmail)
                    .where(SentEmail.message_id == mid, SentEmail.outcome == "claimed")
                    .values(claim_expires_at=_RELEASED)
                )
        except Exception:  # the claim then expires by itself; the send's error is what counts
            activity.logger.warning("e-mail %s: its claim could not be released", mid)


@dataclass(frozen=True)
class _Claim:
    mid: str
    email: Email
    now: dt.datetime
    expires: dt.datetime


class _GroupCommit(Generic[In, Out]):
    """Runs ``write`` on every item submitted while the previous write was in progress, in one
    call (its transaction): each ``run`` returns its item's answer once the write holding it has
    committed, or raises the write's error. The writes run in a task of their own, so no caller
    waits for more than the write holding its item (and the one before)."""

    def __init__(self, write: Callable[[list[In]], Awaitable[list[Out]]]) -> None:
        self._write = write
        self._pending: list[tuple[In, asyncio.Future[Out]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def run(self, item: In) -> Out:
        answer: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        self._pending.append((item, answer))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        return await answer

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                outcomes = await self._write([item for item, _ in batch])
            except Exception as exc:
                for _, waiting in batch:
                    if not waiting.done():
                        waiting.set_exception(exc)
                continue
            except BaseException:  # cancelled (the worker stops): no caller is left waiting
                for _, waiting in [*batch, *self._pending]:
                    waiting.cancel()
                self._pending = []
                raise
            for (_, waiting), outcome in zip(batch, outcomes, strict=True):
                if not waiting.done():
                    waiting.set_result(outcome)


class SmtpPool:
    """Up to ``size`` open connections to the SMTP server, for an activity that sends many
    e-mails (the digests): each e-mail goes through ``MailActivities.deliver`` (its claims and
    guarantees) on a connection already open rather than one of its own, which spares a TCP
    connection, the greeting, EHLO, STARTTLS and the login per e-mail. A connection is replaced
    after ``per_connection`` messages (servers limit them) and when the server has closed it; an
    e-mail whose conversation found the connection closed is sent again once on a new one (its
    claim was released). Use it as ``async with SmtpPool(mail, size) as pool``."""

    def __init__(self, mail: MailActivities, size: int, *, per_connection: int = 100) -> None:
        self._mail = mail
        self._idle: asyncio.Queue[tuple[aiosmtplib.SMTP, int]] = asyncio.Queue()
        self._open: set[aiosmtplib.SMTP] = set()
        self._slots = asyncio.Semaphore(size)
        self._per_connection = per_connection

    async def __aenter__(self) -> SmtpPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for client in list(self._open):
            await self._close(client)

    async def deliver(self, email: Email) -> SentEmails:
        async with self._slots:
            client, used = await self._take()
            try:
                done = await self._mail.deliver(email, via=client)
            except aiosmtplib.SMTPServerDisconnected:
                await self._close(client)
                client, used = await self._connect(), 0
                done = await self._mail.deliver(email, via=client)
            except BaseException:
                await self._close(client)  # its state after an error is unknown
                raise
            if used + 1 >= self._per_connection:
                await self._close(client)
            else:
                self._idle.put_nowait((client, used + 1))
            return done

    async def _take(self) -> tuple[aiosmtplib.SMTP, int]:
        while not self._idle.empty():
            client, used = self._idle.get_nowait()
            if client.is_connected:
                return client, used
            await self._close(client)
        return await self._connect(), 0

    async def _connect(self) -> aiosmtplib.SMTP:
        client = self._mail.connection()
        await client.connect()
        self._open.add(client)
        return client

    async def _close(self, client: aiosmtplib.SMTP) -> None:
        self._open.discard(client)
        try:
            if client.is_connected:
                await client.quit()
        except Exception:  # closing is best effort: the server may be gone already
            client.close()
