"""``caseloop webhooks listen``: a local receiver that verifies and prints webhook deliveries.

A developer subscribes ``http://localhost:PORT/`` (the API allows it with
``WEBHOOKS_ALLOW_LOCALHOST=true``), runs this, and watches each event arrive while clicking
through the demo. Signatures are checked as a real receiver should, with the Standard Webhooks
reference library: a verified event is answered 204, a badly signed one 400 with the reason, so
the sender's retries and the delivery log show what a misconfigured receiver would see. Without
``--secret`` nothing is checked: every event is printed as not checked and answered 204.
"""

from __future__ import annotations

import asyncio
import binascii
import json
import socket
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

import uvicorn
from standardwebhooks import Webhook
from standardwebhooks.webhooks import EmptyWebhookSecretError, WebhookVerificationError

from activities.webhooks import REPLAY_HEADER

NOT_CHECKED = "not checked: no --secret given"
# The largest body read; caseloop's events are a few hundred bytes.
MAX_BODY_BYTES = 1024 * 1024

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True)
class Verdict:
    """What the receiver made of one delivery."""

    verified: bool
    reason: str | None  # why it is not verified
    payload: Any  # the parsed JSON body, when it is JSON

    @property
    def accepted(self) -> bool:
        """Answered 2xx: verified, or not checked because no secret was given."""
        return self.verified or self.reason == NOT_CHECKED


def verify(secret: str | None, body: bytes, headers: Mapping[str, str]) -> Verdict:
    """Check ``body`` against its ``webhook-id/-timestamp/-signature`` headers with ``secret``
    (``whsec_…``), as ``standardwebhooks.Webhook(secret).verify`` does; never raises."""
    try:
        payload: Any = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        payload = None
    if secret is None:
        return Verdict(False, NOT_CHECKED, payload)
    try:
        Webhook(secret).verify(body, dict(headers))
    except WebhookVerificationError as exc:
        return Verdict(False, str(exc) or "signature does not match", payload)
    except (UnicodeDecodeError, ValueError, binascii.Error):
        # A malformed signature header (no "v1,"), bad base64, or a body that is not JSON.
        return Verdict(False, "malformed signature header or body", payload)
    return Verdict(True, None, payload)


def describe(verdict: Verdict, headers: Mapping[str, str]) -> str:
    """One line per delivery: event type, ids, case, and whether it verified."""
    payload = verdict.payload if isinstance(verdict.payload, dict) else {}
    event = payload.get("event") or payload.get("type") or "(no event type)"
    parts = [str(event), f"id {headers.get('webhook-id', '-')}"]
    if payload.get("eventId"):
        parts.append(f"event {payload['eventId']}")
    if payload.get("caseId"):
        parts.append(f"case {payload['caseId']}")
    if payload.get("newStatus"):
        parts.append(f"{payload.get('oldStatus') or '-'} → {payload['newStatus']}")
    if headers.get(REPLAY_HEADER):
        parts.append(f"replay of {headers[REPLAY_HEADER]}")
    if verdict.verified:
        parts.append("verified")
    elif verdict.accepted:
        parts.append(NOT_CHECKED)
    else:
        parts.append(f"NOT verified: {verdict.reason}")
    return "  ".join(parts)


class Receiver:
    """The ASGI app: every POST is a delivery; ``echo`` gets the line (and body) printed."""

    def __init__(
        self,
        *,
        secret: str | None,
        echo: Callable[[str], None] | None,
        show_body: bool = False,
        on_delivery: Callable[[Verdict, Mapping[str, str]], None] | None = None,
    ) -> None:
        """``on_delivery`` sees each delivery's verdict and headers as it arrives (benchmarks
        time them); ``echo`` None prints nothing."""
        if secret is not None:
            # A malformed secret fails here, at start, not on every event.
            try:
                Webhook(secret)
            except (EmptyWebhookSecretError, binascii.Error) as exc:
                raise ValueError(str(exc) or "not base64") from None
        self.secret = secret
        self.echo = echo
        self.show_body = show_body
        self.on_delivery = on_delivery

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] != "POST":
            await _answer(send, 405, "POST webhook deliveries here\n")
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_BODY_BYTES:
                await _answer(send, 413, "body too large\n")
                return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        verdict = verify(self.secret, bytes(body), headers)
        if self.on_delivery is not None:
            self.on_delivery(verdict, headers)
        if self.echo is not None:
            self.echo(describe(verdict, headers))
        if self.echo is not None and self.show_body:
            shown = (
                verdict.payload if verdict.payload is not None else body.decode(errors="replace")
            )
            self.echo("  " + json.dumps(shown, indent=2, ensure_ascii=False).replace("\n", "\n  "))
        if verdict.accepted:
            await _answer(send, 204, "")
        else:
            await _answer(send, 400, f"{verdict.reason}\n")


async def _answer(send: Send, status: int, text: str) -> None:
    content = text.encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8")] if content else []
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


def listen(
    *,
    host: str,
    port: int,
    secret: str | None,
    show_body: bool,
    echo: Callable[[str], None],
) -> None:
    """Serve the receiver on ``host:port`` (0: a free port) until interrupted."""
    receiver = Receiver(secret=secret, echo=echo, show_body=show_body)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    # Listening before the line below is printed: a sender that reads it may connect at once.
    sock.listen(128)
    bound = sock.getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    echo(
        f"Listening on http://{shown_host}:{bound}/ "
        f"({'verifying signatures' if secret else 'NOT verifying: no --secret'}); Ctrl-C stops."
    )
    config = uvicorn.Config(receiver, log_level="warning", access_log=False, lifespan="off")
    asyncio.run(uvicorn.Server(config).serve(sockets=[sock]))
