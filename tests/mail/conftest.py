"""A real SMTP server in the test's event loop (the local sink, aiosmtpd), and e-mails to send."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from activities.mail import MailActivities, SmtpConfig
from domain.mail import Email, MailCategory, Recipient
from mail.sink import KeepInDirectory, list_messages

PORTAL = "https://portal.example.test/portal"
LINK = f"{PORTAL}/cases/7b0d8a52-4b8e-4c55-9d0a-3f1f9c7e2a10?thread=Chat"


@dataclass
class Sink:
    handler: KeepInDirectory
    port: int

    @property
    def directory(self) -> Path:
        return self.handler.directory

    def received(self) -> int:
        return len(list_messages(self.directory))


async def start(handler: KeepInDirectory) -> tuple[asyncio.Server, int]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(handler), host="127.0.0.1", port=0)
    return server, server.sockets[0].getsockname()[1]


class HoldingSink(KeepInDirectory):
    """Keeps what it receives, but holds the SMTP conversations numbered (from 1) in ``held``
    at their recipient, nothing handed over, until ``release`` is set, as a stalled server
    would: a worker can be killed while an e-mail is mid-send."""

    def __init__(self, directory: Path, held: Callable[[int], bool]) -> None:
        super().__init__(directory)
        self.held = held
        self.holding = asyncio.Event()  # set once a conversation is held
        self.release = asyncio.Event()
        self.conversations = 0

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        self.conversations += 1
        if self.held(self.conversations) and not self.release.is_set():
            self.holding.set()
            await self.release.wait()
        envelope.rcpt_tos.append(address)
        return "250 OK"


async def held_sink(
    directory: Path, held: Callable[[int], bool]
) -> AsyncIterator[tuple[HoldingSink, int]]:
    """A running ``HoldingSink`` and its port, for a fixture to yield from; released at the end."""
    handler = HoldingSink(directory, held)
    server, port = await start(handler)
    async with server:
        yield handler, port
        handler.release.set()


@pytest.fixture
async def sink(tmp_path: Path) -> AsyncIterator[Sink]:
    server, port = await start(KeepInDirectory(tmp_path / "mail"))
    async with server:
        yield Sink(KeepInDirectory(tmp_path / "mail"), port)


def smtp_config(port: int) -> SmtpConfig:
    return SmtpConfig(
        host="127.0.0.1",
        port=port,
        security="none",
        user="",
        password=None,
        timeout=5,
        sender="caseloop <no-reply@mail.caseloop.test>",
        portal_base_url=PORTAL,
    )


def mail_activities(sessions: object, port: int) -> MailActivities:
    return MailActivities(sessions, smtp_config(port))  # type: ignore[arg-type]


def partner_wrote(*recipients: str, key: str = "partner-wrote:case-1:msg-5") -> Email:
    return Email(
        idempotency_key=key,
        category=MailCategory.PARTNER_MESSAGES,
        to=[Recipient(email=address, name=address.split("@")[0].title()) for address in recipients],
        subject="Nordic Collect wrote in case CL-1001",
        template="partner_wrote",
        context={
            "partner_name": "Nordic Collect",
            "case_reference": "CL-1001",
            "debtor_name": "Nordisk Tømrer ApS",
            "messages": [
                {"sent_at": "2026-12-02 09:00", "author": "Nina", "text": f"Message {n} <b>"}
                for n in range(1, 6)
            ],
        },
        link=LINK,
    )
