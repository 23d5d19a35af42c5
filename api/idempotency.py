"""``Idempotency-Key`` on POSTs: the same key and body replay the first response.

The key is scoped to the caller's organisation. The first request with a key **claims** it (a
row without a response); the first response with a status below 500 is stored on that row; a
5xx is not, so a retry after an outage runs the request again.

**One request at a time per key.** While a claim is in progress, a second request with the
same key and body waits up to ``WAIT_SECONDS`` for the first one's response and replays it, or
answers 409 ``idempotency_in_progress`` with ``Retry-After``. It never runs the command itself.

**A claim is a lease.** A request that crashed (or lost its database connection) after claiming
leaves an unfinished claim. Such a claim blocks the key only for ``lease_seconds``: the longest a
live request may still be working (a workflow update waits ``API_UPDATE_TIMEOUT_SECONDS``) plus
``LEASE_MARGIN_SECONDS``. After that, the next request with the key and body takes the claim over
(compare-and-set on the claim's time, so only one does) and runs the command again. That is safe
because every command behind an idempotent POST is itself safe to run twice: workflow ids and
update ids are derived from the request, and rows the API writes itself take their id from the
key (``derived_id``), so a crash between committing the work and storing the response neither
loses nor duplicates anything; the retry answers the same resource.

A 422 ``validation_failed`` that the API finds while it builds the command (a body that is
invalid once merged with the case, a ``date`` in the future, an id that is not yours) is not
stored either: like a malformed body caught before the key is examined, it releases the key,
so the corrected request may use it. Nothing has reached a workflow at that point. Rejections
by the workflow itself (``WorkflowRejection``) are outcomes of the command and are stored.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy import bindparam, delete, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.deadline import current_budget
from api.deps import end_read, request_session
from api.errors import NUL, Problem, WorkflowRejection, invalid
from store.accounts import Principal
from store.db import transaction
from store.models import IdempotencyRecord

T = TypeVar("T")

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
# How long a duplicate waits for the first request's response before answering 409.
WAIT_SECONDS = 5.0
POLL_SECONDS = (0.02, 0.5)  # first and longest pause between two looks at the claim
RETRY_AFTER_SECONDS = 1
# Added to API_UPDATE_TIMEOUT_SECONDS: the time a claim is held before another request may take
# it over (reading and writing the read model around the workflow call, uploads to the store).
LEASE_MARGIN_SECONDS = 30.0


def fingerprint(method: str, path: str, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


def derived_id(request: Request, principal: Principal, kind: str, suffix: str = "") -> uuid.UUID:
    """The id of a row a command writes itself (a bank account, a note, an uploaded file).

    Derived from the organisation and the request's Idempotency-Key, so a retry whose first
    attempt was committed but never answered finds that row instead of writing a second one.
    ``kind`` keeps ids of different tables apart, ``suffix`` of several rows of one request.
    Without a key, a fresh id: the request is not idempotent.
    """
    key = request.headers.get(HEADER)
    if not key:
        return uuid.uuid4()
    return uuid.uuid5(uuid.NAMESPACE_URL, f"caseloop:{kind}:{principal.org_id}:{key}{suffix}")


def key_reused() -> Problem:
    """The key is bound to another request (api/idempotency.py checks it first; a derived id
    that points at another row says the same)."""
    return invalid(
        HEADER,
        "was already used with a different request; use a new key for a new request",
        code="idempotency_key_reused",
    )


def in_progress() -> Problem:
    return Problem(
        409,
        "idempotency_in_progress",
        "A request with this Idempotency-Key is still being processed; retry shortly to get "
        "its response.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def lease_seconds(request: Request) -> float:
    """How long a claim holds the key before a retry may take it over."""
    return float(request.app.state.settings.api_update_timeout_seconds) + LEASE_MARGIN_SECONDS


# The statements of a keyed request's common path (claim, store, release), built once: built per
# request and run through the ORM's unit of work they cost more than their database work.
_ORG = bindparam("org", type_=IdempotencyRecord.org_id.type)
_KEY = bindparam("k", type_=IdempotencyRecord.key.type)
_CLAIM = insert(IdempotencyRecord)
_OPEN_CLAIM = (
    IdempotencyRecord.org_id == _ORG,
    IdempotencyRecord.key == _KEY,
    IdempotencyRecord.status_code.is_(None),
)
_FINISH = (
    update(IdempotencyRecord)
    .where(*_OPEN_CLAIM, IdempotencyRecord.request_hash == bindparam("digest"))
    .values(status_code=bindparam("status"), response_body=bindparam("body"))
    .execution_options(synchronize_session=False)
)
_RELEASE = (
    delete(IdempotencyRecord)
    .where(
        *_OPEN_CLAIM,
        IdempotencyRecord.created_at
        == bindparam("claimed", type_=IdempotencyRecord.created_at.type),
    )
    .execution_options(synchronize_session=False)
)


def _engine(sessions: async_sessionmaker[AsyncSession]) -> AsyncEngine:
    """The engine behind the app's sessions: the statements above need no session."""
    engine: AsyncEngine = sessions.kw["bind"]
    return engine


@dataclass(frozen=True)
class Claim:
    """This request holds the key; ``claimed_at`` tells its claim from a later takeover.
    ``pending``: the claim is in the request session's open transaction, not committed yet
    (``idempotent_after`` commits it together with its read)."""

    claimed_at: dt.datetime
    pending: bool = False


async def _claim(
    sessions: async_sessionmaker[AsyncSession],
    principal: Principal,
    key: str,
    digest: str,
    lease: dt.timedelta,
    *,
    first: bool = False,
    session: AsyncSession | None = None,
) -> Claim | IdempotencyRecord | None:
    """Claim the key for this request, or the stored record (finished, in progress, or for
    another request). None when the claim raced with another request: look again. ``first``:
    this request's first look, which tries the claim before it reads; with ``session`` (the
    request's, no transaction open) that first INSERT opens the session's transaction and is
    left for the caller to commit (a ``pending`` claim)."""
    now = dt.datetime.now(dt.UTC)
    claim = {
        "org_id": principal.org_id,
        "key": key,
        "request_hash": digest,
        "status_code": None,
        "response_body": None,
        "created_at": now,
    }
    if first and session is not None and not session.in_transaction():
        try:
            connection = await session.connection()
            await connection.execute(_CLAIM, claim)
            return Claim(now, pending=True)
        except IntegrityError:
            await session.rollback()  # the key is in use: look at it below
    elif first:
        # Most keys are new: claim with the INSERT alone; a key in use fails it, then look.
        try:
            async with _engine(sessions).begin() as connection:
                await connection.execute(_CLAIM, claim)
            return Claim(now)
        except IntegrityError:
            pass
    try:
        async with transaction(sessions) as session:
            existing = await session.get(IdempotencyRecord, (principal.org_id, key))
            if existing is None:
                await session.execute(_CLAIM, claim)
                return Claim(now)
            if (
                existing.status_code is not None
                or existing.request_hash != digest
                or existing.created_at > now - lease
            ):
                return existing
            # A claim older than the lease: its request is gone. Take it over, once.
            taken = await session.execute(
                update(IdempotencyRecord)
                .where(
                    IdempotencyRecord.org_id == principal.org_id,
                    IdempotencyRecord.key == key,
                    IdempotencyRecord.status_code.is_(None),
                    IdempotencyRecord.created_at == existing.created_at,
                )
                .values(created_at=now)
                .execution_options(synchronize_session=False)
            )
            return Claim(now) if _rowcount(taken) == 1 else None
    except IntegrityError:
        return None  # a concurrent request claimed it first: read its record


def _healthy(session: AsyncSession) -> bool:
    """The session can take a write: no transaction, or one no error has spoilt."""
    transaction = session.sync_session.get_transaction()
    return transaction is None or transaction.is_active


async def _abandon_request_transaction() -> None:
    """Roll back the request session's open transaction, if any. A claim still pending in it
    must not outlive it: another connection's write of the same key would wait on it (SQLite's
    lock, PostgreSQL's unique index) while this request waits on that write."""
    session = request_session()
    if session is not None and session.in_transaction():
        await session.rollback()


def _rowcount(result: Any) -> int:
    return int(result.rowcount)


async def idempotent(
    request: Request,
    principal: Principal,
    body: Any,
    execute: Callable[[], Awaitable[Response]],
) -> Response:
    """Run ``execute`` once per (organisation, Idempotency-Key); replay its response afterwards."""
    return await _idempotent(request, principal, body, lambda _claim: execute())


async def idempotent_after(
    request: Request,
    principal: Principal,
    body: Any,
    read: Callable[[], Awaitable[T]],
    execute: Callable[[T], Awaitable[Response]],
) -> Response:
    """``idempotent`` for a command that first reads what it acts on (its case, which also
    checks that the caller sees it): ``execute`` gets what ``read`` returned.

    ``read`` runs in the request's session (``api.deps.get_session``), in the transaction whose
    INSERT claims the key: the claim and the read are committed together, before ``execute``
    runs (which may write elsewhere, or wait on a workflow). What ``read`` raises is the
    command's outcome, as if ``execute`` had raised it (a 404 is stored for the key)."""

    async def run(claim: Claim | None) -> Response:
        found = await read()
        if claim is not None and claim.pending:
            await end_read()  # the claim and the read: one COMMIT
        return await execute(found)

    return await _idempotent(request, principal, body, run, session=request_session())


async def _idempotent(
    request: Request,
    principal: Principal,
    body: Any,
    execute: Callable[[Claim | None], Awaitable[Response]],
    *,
    session: AsyncSession | None = None,
) -> Response:
    """``idempotent``'s work; with ``session``, the claim is left pending in it (``_claim``)."""
    key = request.headers.get(HEADER)
    if key is None:
        return await _respond(lambda: execute(None))
    if not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise invalid(HEADER, f"must be 1 to {MAX_KEY_LENGTH} characters", code="invalid_header")
    if NUL in key:  # PostgreSQL cannot store it
        raise invalid(HEADER, "must not contain NUL characters", code="invalid_header")
    sessions = request.app.state.sessions
    digest = fingerprint(request.method, request.url.path, body)
    claim = await _wait_for_claim(request, sessions, principal, key, digest, session)
    if isinstance(claim, Response):
        return claim
    try:
        response = await execute(claim)
    except (ValidationError, RequestValidationError):
        await _release(sessions, principal, key, claim)
        raise  # rendered by the app's handlers, as without a key
    except Problem as problem:
        if _invalid_request(problem):
            await _release(sessions, principal, key, claim)
            return problem.response()
        response = problem.response()
    except BaseException:
        await _release(sessions, principal, key, claim)  # an unexpected error, like a 5xx
        raise
    if response.status_code < 500:
        await _store(sessions, principal, key, digest, response)
    else:
        await _release(sessions, principal, key, claim)
    return response


async def _wait_for_claim(
    request: Request,
    sessions: async_sessionmaker[AsyncSession],
    principal: Principal,
    key: str,
    digest: str,
    session: AsyncSession | None = None,
) -> Claim | Response:
    """This request's claim on the key, or the stored response to replay. While another request
    holds the key, wait for its response up to ``WAIT_SECONDS``, then 409. With ``session``, a
    first claim is left pending in it (``_claim``)."""
    lease = dt.timedelta(seconds=lease_seconds(request))
    budget = current_budget()  # never wait past the request's own deadline (api/deadline.py)
    give_up = time.monotonic() + min(WAIT_SECONDS, budget.remaining() if budget else WAIT_SECONDS)
    pause, longest = POLL_SECONDS
    first = True
    while True:
        found = await _claim(sessions, principal, key, digest, lease, first=first, session=session)
        first = False
        if isinstance(found, Claim):
            return found
        if found is not None:
            if found.request_hash != digest:
                raise key_reused()
            if found.status_code is not None and found.response_body is not None:
                return Response(
                    content=found.response_body,
                    status_code=found.status_code,
                    media_type=_media_type(found.status_code),
                    headers={"Idempotent-Replayed": "true"},
                )
        if time.monotonic() >= give_up:
            raise in_progress()
        if found is not None:
            await asyncio.sleep(pause)
            pause = min(pause * 2, longest)
        # None: the claim raced with another request's; look again at once.


def _invalid_request(problem: Problem) -> bool:
    """A 422 ``validation_failed`` the API raised about the request, before any workflow saw it."""
    return problem.code == "validation_failed" and not isinstance(problem, WorkflowRejection)


async def _release(
    sessions: async_sessionmaker[AsyncSession], principal: Principal, key: str, claim: Claim
) -> None:
    """Give up this request's claim on the key (never a stored response, nor a claim another
    request took over), so a corrected request or a retry may use the key at once."""
    await _abandon_request_transaction()  # a pending claim goes with it
    async with _engine(sessions).begin() as connection:
        await connection.execute(
            _RELEASE, {"org": principal.org_id, "k": key, "claimed": claim.claimed_at}
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
    # Our claim, or a takeover of it (both ran the same command, either answer does): one
    # UPDATE. Otherwise, see what became of the claim.
    params = {
        "org": principal.org_id,
        "k": key,
        "digest": digest,
        "status": response.status_code,
        "body": body,
    }
    session = request_session()
    if session is not None and session.in_transaction() and not _healthy(session):
        # An error spoilt the request's transaction: end it (a pending claim goes with it, and
        # is written anew below) before another connection writes the key.
        await _abandon_request_transaction()
    if session is not None and session.in_transaction():
        # In the request's open read transaction: its read of the answer (the case as it is
        # now) and this write are one transaction. The response is sent only after the commit.
        # A plain statement on the session's connection: the ORM's bulk UPDATE path around it
        # cost more than the UPDATE.
        connection = await session.connection()
        finished = await connection.execute(_FINISH, params)
        await session.commit()
    else:
        async with _engine(sessions).begin() as connection:
            finished = await connection.execute(_FINISH, params)
    if _rowcount(finished) == 1:
        return
    try:
        async with transaction(sessions) as session:
            stored = await session.get(IdempotencyRecord, (principal.org_id, key))
            if stored is None:
                # The claim is gone (deleted by hand, say): keep the response all the same.
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
                # Our claim, or a takeover of it: both ran the same command, either answer does.
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
