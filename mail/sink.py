"""The local mail sink of ``make run``: an SMTP server (``aiosmtpd``) that delivers nothing and
keeps every message it receives as one ``.eml`` file under ``var/mail/``, named
``<received, UTC>-<id>.eml`` so that names sort by arrival; ``caseloop mail list`` and
``caseloop mail show ID`` read them (``list_messages``, ``read_message``).

Run alone: ``python -m mail.sink --dir var/mail --port 8025``. For local use only: it accepts
any message from anyone, without TLS or a login, so it listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import email.policy
import os
import secrets
import signal
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

_PARSER = BytesParser(policy=email.policy.default)


class KeepInDirectory:
    """An aiosmtpd handler that writes each message to ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content
        assert isinstance(content, bytes)
        store_message(self.directory, content)
        return "250 Message accepted for delivery"


def store_message(directory: Path, content: bytes) -> Path:
    """Keep ``content`` (an RFC 5322 message) as a new file; written whole or not at all."""
    directory.mkdir(parents=True, exist_ok=True)
    received = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = directory / f"{received}-{secrets.token_hex(4)}.eml"
    partial = path.with_suffix(".part")
    partial.write_bytes(content)
    os.replace(partial, path)
    return path


async def start_sink(directory: Path, host: str = "127.0.0.1", port: int = 0) -> asyncio.Server:
    """Listen on ``host:port`` (0: a free port, see ``server.sockets``) in the running loop."""
    handler = KeepInDirectory(directory)
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: SMTP(handler, hostname="caseloop-mail-sink"), host=host, port=port
    )


@dataclass(frozen=True)
class StoredMessage:
    id: str
    received: dt.datetime
    to: str
    subject: str
    message_id: str
    path: Path


def _stored(path: Path) -> StoredMessage:
    stamp, _, ident = path.stem.partition("-")
    with path.open("rb") as file:
        headers = _PARSER.parse(file, headersonly=True)
    return StoredMessage(
        id=ident,
        received=dt.datetime.strptime(stamp, "%Y%m%dT%H%M%S%fZ").replace(tzinfo=dt.UTC),
        to=str(headers.get("To", "")),
        subject=str(headers.get("Subject", "")),
        message_id=str(headers.get("Message-ID", "")),
        path=path,
    )


def list_messages(directory: Path) -> list[StoredMessage]:
    """Every kept message, newest first."""
    if not directory.is_dir():
        return []
    return [_stored(path) for path in sorted(directory.glob("*.eml"), reverse=True)]


def read_message(directory: Path, ident: str) -> EmailMessage | None:
    """The kept message with id ``ident`` (as ``list_messages`` shows it), or None."""
    for path in directory.glob(f"*-{ident}.eml") if ident.isalnum() else ():
        with path.open("rb") as file:
            message: Any = _PARSER.parse(file)
            assert isinstance(message, EmailMessage)
            return message
    return None


async def _serve(directory: Path, host: str, port: int) -> None:
    server = await start_sink(directory, host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        print(f"mail sink on {host}:{port}, keeping messages in {directory}", flush=True)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(_serve(args.dir, args.host, args.port))


if __name__ == "__main__":
    main()
