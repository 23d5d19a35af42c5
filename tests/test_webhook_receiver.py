"""``caseloop webhooks listen``: verifies Standard Webhooks signatures and prints each event."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os
import re
import secrets
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from outbound import post

ROOT = Path(__file__).resolve().parents[1]
SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
CASE_ID = "0b8e4c1e-3f57-4d7e-9a55-2f7f6d1c9a01"
EVENT = {
    "event": "case.status.changed",
    "eventId": "evt-17",
    "timestamp": "2026-12-02T02:00:00Z",
    "caseId": CASE_ID,
    "caseNumber": "C-1042",
    "oldStatus": "Created",
    "newStatus": "Validated",
}


def signed(body: bytes, secret: str, msg_id: str) -> dict[str, str]:
    now = dt.datetime.now(dt.UTC)
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body.decode()),
    }


@pytest.fixture
async def listener() -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """``caseloop webhooks listen --port 0 --secret …`` as a user runs it; yields it and its URL."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-u",
        str(ROOT / "cli.py"),
        "webhooks",
        "listen",
        "--port",
        "0",
        "--secret",
        SECRET,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdout is not None
    try:
        first = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        match = re.search(r"Listening on (http://127\.0\.0\.1:\d+/)", first)
        assert match, first
        yield process, match.group(1)
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()


async def test_listen_verifies_a_signed_event_and_refuses_a_badly_signed_one(
    listener: tuple[asyncio.subprocess.Process, str],
) -> None:
    process, url = listener
    assert process.stdout is not None
    body = json.dumps(EVENT).encode()

    good = await post(url, body, signed(body, SECRET, "msg_good"), timeout=10, allow_localhost=True)
    other_secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    forged = await post(
        url, body, signed(body, other_secret, "msg_forged"), timeout=10, allow_localhost=True
    )
    tampered_headers = signed(body, SECRET, "msg_tampered")
    tampered = await post(
        url,
        body.replace(b"Validated", b"Closed"),
        tampered_headers,
        timeout=10,
        allow_localhost=True,
    )
    unsigned = await post(
        url, body, {"content-type": "application/json"}, timeout=10, allow_localhost=True
    )

    assert good.status_code == 204
    assert [forged.status_code, tampered.status_code, unsigned.status_code] == [400, 400, 400]
    assert "No matching signature found" in forged.body_excerpt
    assert "Missing required headers" in unsigned.body_excerpt

    lines = [
        (await asyncio.wait_for(process.stdout.readline(), 10)).decode().rstrip("\n")
        for _ in range(4)
    ]
    assert lines[0] == (
        f"case.status.changed  id msg_good  event evt-17  case {CASE_ID}"
        "  Created → Validated  verified"
    )
    assert lines[1].startswith("case.status.changed  id msg_forged  event evt-17")
    assert lines[1].endswith("NOT verified: No matching signature found")
    assert "id msg_tampered" in lines[2]
    assert "Created → Closed" in lines[2]
    assert lines[2].endswith("NOT verified: No matching signature found")
    assert lines[3].endswith("NOT verified: Missing required headers")


async def test_listen_refuses_a_stale_timestamp_and_a_malformed_signature(
    listener: tuple[asyncio.subprocess.Process, str],
) -> None:
    process, url = listener
    assert process.stdout is not None
    body = json.dumps(EVENT).encode()
    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    stale = {
        "webhook-id": "msg_stale",
        "webhook-timestamp": str(int(old.timestamp())),
        "webhook-signature": Webhook(SECRET).sign("msg_stale", old, body.decode()),
    }
    malformed = {**signed(body, SECRET, "msg_malformed"), "webhook-signature": "garbage"}

    answers = [
        await post(url, body, headers, timeout=10, allow_localhost=True)
        for headers in (stale, malformed)
    ]

    assert [a.status_code for a in answers] == [400, 400]
    lines = [
        (await asyncio.wait_for(process.stdout.readline(), 10)).decode().rstrip("\n")
        for _ in range(2)
    ]
    assert lines[0].endswith("NOT verified: Message timestamp too old")
    assert lines[1].endswith("NOT verified: malformed signature header or body")


def test_listen_without_a_secret_prints_events_as_not_checked() -> None:
    from webhook_receiver import NOT_CHECKED, describe, verify

    body = json.dumps(EVENT).encode()
    verdict = verify(None, body, {})
    assert verdict.accepted and not verdict.verified
    assert describe(verdict, {"webhook-id": "msg_2", "webhook-replay": "msg_1"}).endswith(
        f"replay of msg_1  {NOT_CHECKED}"
    )
