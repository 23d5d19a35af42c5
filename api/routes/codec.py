"""The codec endpoint: Temporal's remote codec protocol, so ops can read encrypted payloads.

``POST .../encode`` and ``POST .../decode`` take and answer ``{"payloads": [...]}``, Temporal's
``Payloads`` message in protobuf JSON (``metadata`` values and ``data`` in base64). The work is
done by the API's own Temporal client's codec (``codec.EncryptionCodec``), the one the worker
uses. Two ways in, both for ops only:

- ``/api/ops/codec/{encode,decode}`` with an ops API key (``Authorization: Bearer`` or
  ``XApiKey``), e.g. ``temporal workflow show --codec-endpoint .../api/ops/codec
  --codec-auth 'Bearer <ops key>'``.
- ``/api/ops/codec/ui/<CODEC_UI_TOKEN>/{encode,decode}`` for the Temporal Web UI, which cannot
  send an API key: the secret is the path segment, configured as the UI's codec endpoint
  (``make run`` does it). Off while CODEC_UI_TOKEN is unset.

Browsers may call it from CODEC_CORS_ORIGINS (``CodecCORS``); the access log never shows the
token (``api.access_log``).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from google.protobuf import json_format
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.api.common.v1 import Payloads

from api.deps import OpsPrincipal, SettingsDep, TemporalDep
from api.errors import Problem, not_found
from codec import PayloadKeyError, UnknownPayloadKey
from settings import Settings

PREFIX = "/api/ops/codec/"
UI_PREFIX = PREFIX + "ui/"
# Temporal refuses a payload over 2 MiB; base64 and JSON add a third, and a request may carry
# several. The request guard allows codec bodies this large (or MAX_BODY_BYTES if larger).
MAX_BODY_BYTES = 4 * 1024 * 1024

router = APIRouter(prefix="/ops/codec", tags=["ops"])

Operation = Literal["encode", "decode"]

_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["payloads"],
                    "additionalProperties": False,
                    "properties": {
                        "payloads": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "additionalProperties": False,
                                "properties": {
                                    "metadata": {
                                        "type": "object",
                                        "additionalProperties": {"type": "string"},
                                    },
                                    "data": {"type": "string", "format": "byte"},
                                },
                            },
                        }
                    },
                }
            }
        },
    }
}


def is_ui_path(path: str) -> bool:
    """Whether ``path`` is the Web UI's codec endpoint (its credential is in the path)."""
    return path.startswith(UI_PREFIX)


def redact_ui_token(path: str) -> str:
    """``path`` with the Web UI's codec token replaced, for logs."""
    if not is_ui_path(path):
        return path
    _, _, rest = path[len(UI_PREFIX) :].partition("/")
    return f"{UI_PREFIX}***" + (f"/{rest}" if rest else "")


async def _run(request: Request, client: TemporalDep, operation: Operation) -> JSONResponse:
    try:
        payloads = json_format.Parse(await request.body(), Payloads())
    except (json_format.ParseError, UnicodeDecodeError) as exc:
        raise Problem(
            400,
            "invalid_codec_request",
            f'The body must be Temporal Payloads in protobuf JSON ({{"payloads": [...]}}): {exc}',
        ) from exc
    codec = client.data_converter.payload_codec
    if codec is not None:
        transform: Callable[[Payloads], Awaitable[None]] = (
            codec.encode_wrapper if operation == "encode" else codec.decode_wrapper
        )
        try:
            await transform(payloads)
        except UnknownPayloadKey as exc:
            raise Problem(422, "payload_key_unknown", str(exc)) from exc
        except PayloadKeyError as exc:
            raise Problem(422, "payload_undecryptable", str(exc)) from exc
    return JSONResponse(json_format.MessageToDict(payloads))


@router.post("/{operation}", openapi_extra=_BODY)
async def codec_with_key(
    operation: Operation, request: Request, principal: OpsPrincipal, client: TemporalDep
) -> JSONResponse:
    """Encrypt (``encode``) or decrypt (``decode``) Temporal payloads; ops keys only."""
    return await _run(request, client, operation)


# Not in the OpenAPI document: the Temporal Web UI's own door, authenticated by a secret in
# its path, not an API an integrator calls (docs/operations.md describes it).
@router.post("/ui/{token}/{operation}", include_in_schema=False)
async def codec_for_web_ui(
    token: str, operation: Operation, request: Request, settings: SettingsDep, client: TemporalDep
) -> JSONResponse:
    """The same for the Temporal Web UI, authenticated by CODEC_UI_TOKEN in the path."""
    expected = settings.codec_ui_token
    if expected is None or not hmac.compare_digest(
        token.encode(), expected.get_secret_value().encode()
    ):
        raise not_found("Codec endpoint")
    return await _run(request, client, operation)


class CodecCORS:
    """CORS for the codec endpoint only: the Web UI (CODEC_CORS_ORIGINS) calls it from the
    browser, with ``X-Namespace`` and, if so configured, credentials. Every other path is left
    as it is (the rest of the API is not meant for browsers on other origins)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.cors = CORSMiddleware(
            app,
            allow_origins=settings.codec_cors_origins,
            allow_methods=["POST"],
            allow_headers=["Content-Type", "X-Namespace", "Authorization", "XApiKey"],
            allow_credentials=True,
            max_age=600,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PREFIX):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)
