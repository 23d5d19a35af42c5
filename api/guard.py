"""What every ``/api`` request must pass before the app reads its body (the health checks aside);
the portal's (``/portal``) pass the size caps.

A pure ASGI middleware, so it runs before FastAPI parses anything:

- **A key header.** A request with neither ``Authorization`` nor ``XApiKey`` gets the 401 of
  ``api.errors.unauthenticated`` at once, without its body being read. Whether the key is valid
  is still decided by ``api.deps.get_principal``.
  The Temporal Web UI's codec endpoint is the one exception: its credential is a secret in
  its path (``api.routes.codec``), checked by the route.
- **A header size cap.** The request line aside, a request's headers may have at most
  ``MAX_HEADER_BYTES``; more gets 431 ``headers_too_large`` (on every path), before anything
  else is looked at. ``api.server`` has uvicorn read heads that large.
- **A body size cap.** ``MAX_BODY_BYTES`` for a JSON (or any non-multipart) body, and
  ``ATTACHMENT_MAX_BYTES + MAX_BODY_BYTES`` for multipart/form-data. A larger body gets 413
  ``payload_too_large`` before the route runs: on its ``Content-Length`` when it declares one;
  otherwise (chunked) by counting the bytes as they arrive. A non-multipart body is read up to
  the cap before the app sees it (the codec endpoint's cap is at least 4 MiB, for Temporal's
  largest payloads); a multipart body streams through to the route (which checks
  each file against ``ATTACHMENT_MAX_BYTES`` itself) and is cut off once it passes the cap.
- **Well-formed JSON.** A buffered ``POST``/``PUT``/``PATCH`` body sent as JSON must pass
  ``api.json_body.check`` (UTF-8, syntax, nesting, number length), or gets its 400 problem.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import json_body
from api.errors import Problem, unauthenticated
from api.routes.codec import MAX_BODY_BYTES as CODEC_MAX_BODY_BYTES
from api.routes.codec import PREFIX as CODEC_PREFIX
from api.routes.codec import is_ui_path
from settings import Settings

GUARDED_PREFIX = "/api/"
# The portal's pages (portal/): signed in with a session cookie, not a key, but their form
# bodies have the same size caps.
PORTAL_PREFIX = "/portal/"
UNGUARDED_PATHS = frozenset({"/api/health", "/api/health/live", "/api/health/ready"})
KEY_HEADERS = ("authorization", "xapikey")
KEY_HEADER_NAMES = frozenset(name.encode() for name in KEY_HEADERS)  # ASGI: lower-case bytes
MAX_HEADER_BYTES = 16 * 1024
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def headers_too_large(max_bytes: int = MAX_HEADER_BYTES) -> Problem:
    return Problem(
        431,
        "headers_too_large",
        f"The request headers may have at most {max_bytes} bytes in all.",
        extra={"maxBytes": max_bytes},
    )


def payload_too_large(max_bytes: int) -> Problem:
    return Problem(
        413,
        "payload_too_large",
        f"The request body may have at most {max_bytes} bytes.",
        extra={"maxBytes": max_bytes},
    )


class BodyTooLarge(Exception):
    """Raised into the app when a streamed body passes the cap (the guard answers 413)."""


@dataclass
class _Exchange:
    received: int = 0
    exceeded: bool = False
    started: bool = False  # the app has started its response
    replaced: bool = False  # the guard answered 413 in place of the app's response


class RequestGuard:
    """Checks the key header and the body size of ``/api`` requests (see the module doc)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        # Read on every request: the settings object is the app's, and tests tune it.
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "") if scope["type"] == "http" else ""
        if not path:
            await self.app(scope, receive, send)
            return
        # One pass over the raw headers: their size, and the few this guard reads.
        size = 0
        has_key = False
        media = declared = ""
        chunked = False
        for name, value in scope["headers"]:
            size += len(name) + len(value) + 4
            if name in KEY_HEADER_NAMES:
                has_key = True
            elif name == b"content-type":
                media = value.decode("latin-1").split(";")[0].strip().lower()
            elif name == b"content-length":
                declared = value.decode("latin-1").strip()
            elif name == b"transfer-encoding":
                chunked = True
        if size > MAX_HEADER_BYTES:
            await headers_too_large().response(path)(scope, receive, send)
            return
        portal = path.startswith(PORTAL_PREFIX)  # forms: the same body caps, and no key
        if not portal and (not path.startswith(GUARDED_PREFIX) or path in UNGUARDED_PATHS):
            await self.app(scope, receive, send)
            return
        if not portal and not has_key and not is_ui_path(path):
            await unauthenticated().response(path)(scope, receive, send)
            return
        if not chunked and declared in ("", "0"):
            # No body (most requests: every GET): nothing to count, buffer or check.
            await self.app(scope, receive, send)
            return
        multipart = media == "multipart/form-data"
        cap = self.settings.max_body_bytes
        if multipart:
            cap += self.settings.attachment_max_bytes
        elif path.startswith(CODEC_PREFIX):
            cap = max(cap, CODEC_MAX_BODY_BYTES)
        if declared.isdigit() and int(declared) > cap:
            await payload_too_large(cap).response(path)(scope, receive, send)
            return
        if multipart:
            await self._streamed(scope, receive, send, cap)
        else:
            json = json_body.is_json(media) and scope["method"] in BODY_METHODS
            await self._buffered(scope, receive, send, cap, json=json)

    async def _buffered(
        self, scope: Scope, receive: Receive, send: Send, cap: int, *, json: bool
    ) -> None:
        """Read the whole body (at most ``cap`` bytes) first, check it if it is ``json``, then
        hand it to the app."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending its body
            body: bytes = message.get("body", b"")
            size += len(body)
            if size > cap:
                await payload_too_large(cap).response(scope["path"])(scope, receive, send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        if json and (problem := json_body.check(b"".join(chunks))) is not None:
            await problem.response(scope["path"])(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _streamed(self, scope: Scope, receive: Receive, send: Send, cap: int) -> None:
        """Pass the body through while counting it; past ``cap``, answer 413 instead of the
        app, provided the app has not started its response yet."""
        state = _Exchange()
        too_large = payload_too_large(cap).response(scope["path"])

        async def counted() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                state.received += len(message.get("body", b""))
                if state.received > cap:
                    state.exceeded = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            if state.replaced:
                return  # the app's own answer to the cut-off body is dropped
            if message["type"] == "http.response.start":
                if state.exceeded:  # the app caught BodyTooLarge and answered something else
                    state.replaced = state.started = True
                    await too_large(scope, receive, send)
                    return
                state.started = True
            await send(message)

        try:
            await self.app(scope, counted, guarded_send)
        except Exception:
            if not state.exceeded:
                raise
        if state.exceeded and not state.started:
            await too_large(scope, receive, send)
