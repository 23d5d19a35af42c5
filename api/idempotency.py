"""``Idempotency-Key`` on POSTs: the same key and body replay the first response.

The key is scoped to the caller's organisation. The first response with a status below 500 is
stored; a 5xx is not, so a retry after an outage runs the request again. Every command behind an
idempotent POST is itself safe to run twice (workflow ids and update ids are derived from the
request), so a crash between doing the work and storing the response loses nothing.

A 422 ``validation_failed`` that the API finds while it builds the command (a body that is
invalid once merged with the case, a ``date`` in the future, an id that is not yours) is not
stored either: like a malformed body caught before the key is examined, it releases the key,
so the corrected request may use it. Nothing has reached a workflow at that point. Rejections
by the workflow itself (``WorkflowRejection``) are outcomes of the command and are stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.errors import NUL, Problem, WorkflowRejection, invalid
from store.accounts import Principal
from store.db import transaction
from store.models import IdempotencyRecord

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


def fingerprint(method: str, path: str, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


async def _claim(
    sessions: async_sessionmaker[AsyncSession], principal: Principal, key: str, digest: str
) -> IdempotencyRecord | None:
    """The stored record for this key, or None after claiming the key for this request."""
    for _ in range(2):
        try:
            async with transaction(sessions) as session:
                existing = await session.get(IdempotencyRecord, (principal.org_id, key))
                if existing is not None:
                    return existing
                session.add(
                    IdempotencyRecord(
                        org_id=principal.org_id,
                        key=key,
                        request_hash=digest,
                        status_code=None,
                        response_body=None,
                        created_at=dt.datetime.now(dt.UTC),
                    )
                )
                return None
        except IntegrityError:
            continue  # a concurrent request claimed it first: read its record
    raise Problem(409, "idempotency_conflict", "The request is being processed; retry shortly.")


async def idempotent(
    request: Request,
    principal: Principal,
    body: Any,
    execute: Callable[[], Awaitable[Response]],
) -> Response:
    """Run ``execute`` once per (organisation, Idempotency-Key); replay its response afterwards."""
    key = request.headers.get(HEADER)
    if key is None:
        return await _respond(execute)
    if not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise invalid(HEADER, f"must be 1 to {MAX_KEY_LENGTH} characters", code="invalid_header")
    if NUL in key:  # PostgreSQL cannot store it
        raise invalid(HEADER, "must not contain NUL characters", code="invalid_header")
    sessions = request.app.state.sessions
    digest = fingerprint(request.method, request.url.path, body)
    record = await _claim(sessions, principal, key, digest)
    if record is not None:
        if record.request_hash != digest:
            raise invalid(
                HEADER,
                "was already used with a different request; use a new key for a new request",
                code="idempotency_key_reused",
            )
        if record.status_code is not None and record.response_body is not None:
            return Response(
                content=record.response_body,
                status_code=record.status_code,
                media_type=_media_type(record.status_code),
                headers={"Idempotent-Replayed": "true"},
            )
        # Claimed by an earlier attempt that never finished: the command is safe to run again.
    try:
        response = await execute()
    except (ValidationError, RequestValidationError):
        await _release(sessions, principal, key, digest)
        raise  # rendered by the app's handlers, as without a key
    except Problem as problem:
        if _invalid_request(problem):
            await _release(sessions, principal, key, digest)
            return problem.response()
        response = problem.response()
    if response.status_code < 500:
        await _store(sessions, principal, key, digest, response)
    return response


def _invalid_request(problem: Problem) -> bool:
    """A 422 ``validation_failed`` the API raised about the request, before any workflow saw it."""
    return problem.code == "validation_failed" and not isinstance(problem, WorkflowRejection)


async def _release(
    sessions: async_sessionmaker[AsyncSession], principal: Principal, key: str, digest: str
) -> None:
    """Give up this request's claim on the key (never a stored response, nor another request's
    claim), so a corrected request may use the key."""
    async with transaction(sessions) as session:
        await session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.org_id == principal.org_id,
                IdempotencyRecord.key == key,
                IdempotencyRecord.request_hash == digest,
                IdempotencyRecord.status_code.is_(None),
            )
        )


async def _store(
    sessions: async_sessionmaker[AsyncSession],
    principal: Principal,
    key: str,
    digest: str,
    response: Response,
) -> None:
    """Keep the first response for replays."""
    body = bytes(response.body).decode()
    try:
        async with transaction(sessions) as session:
            stored = await session.get(IdempotencyRecord, (principal.org_id, key))
            if stored is None:
                # Released meanwhile by a concurrent duplicate that was refused: claim it again.
                session.add(
                    IdempotencyRecord(
                        org_id=principal.org_id,
                        key=key,
                        request_hash=digest,
                        status_code=response.status_code,
                        response_body=body,
                        created_at=dt.datetime.now(dt.UTC),
                    )
                )
            elif stored.status_code is None and stored.request_hash == digest:
                stored.status_code = response.status_code
                stored.response_body = body
    except IntegrityError:
        pass  # another request took the key in that moment; its response is the one kept


async def _respond(execute: Callable[[], Awaitable[Response]]) -> Response:
    try:
        return await execute()
    except Problem as problem:
        return problem.response()


def _media_type(status: int) -> str:
    return "application/problem+json" if status >= 400 else "application/json"
