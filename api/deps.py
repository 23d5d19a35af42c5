"""Typed dependencies every route uses: database session, Temporal client, caller."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Annotated
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.security import APIKeyHeader, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.client import Client

from api.errors import forbidden, invalid, not_found, rate_limited, unauthenticated
from api.keycache import KeyCache
from domain.enums import OrgKind
from settings import Settings
from store.accounts import Principal, principal_for_key
from store.blobs import BlobStore
from store.cases import CaseRow, get_case

# The request's session, so that ``end_read`` can find it from anywhere in the request.
_request_session: ContextVar[AsyncSession | None] = ContextVar("request_session", default=None)
# The sessions ``get_session`` opened for the running request; ``RequestSessions`` closes them.
_opened: ContextVar[list[AsyncSession] | None] = ContextVar("request_sessions", default=None)


async def get_session(request: Request) -> AsyncSession:
    """The request's read session. Routes only read through it (they write in transactions of
    their own), so ``end_read`` may end its transaction whenever the request starts to wait.

    Closed when the request is done (``RequestSessions``, after its answer is sent, as FastAPI
    closes a dependency with ``yield``): a plain dependency, because FastAPI's machinery for
    one with ``yield`` (a context manager, a cancel scope, an exit-stack entry) cost more per
    request than opening the session."""
    opened = _opened.get()
    if opened is None:
        raise RuntimeError("get_session runs inside RequestSessions (api.app installs it)")
    session: AsyncSession = request.app.state.sessions()
    opened.append(session)
    _request_session.set(session)
    return session


class RequestSessions:
    """ASGI middleware: closes the sessions ``get_session`` opened for a request once the app
    is done with it, and leaves no session behind as the request's (``request_session``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        opened: list[AsyncSession] = []
        token = _opened.set(opened)
        current = _request_session.set(None)
        try:
            await self.app(scope, receive, send)
        finally:
            _request_session.reset(current)
            _opened.reset(token)
            for session in opened:
                await session.close()


@contextmanager
def serving(session: AsyncSession) -> Iterator[None]:
    """Make ``session`` the request's session (``request_session``, ``end_read``) while a route's
    function runs outside FastAPI's dependencies (a portal page calling it)."""
    token = _request_session.set(session)
    try:
        yield
    finally:
        _request_session.reset(token)


def request_session() -> AsyncSession | None:
    """The request's session (``get_session``), if the route uses one."""
    return _request_session.get()


async def end_read() -> None:
    """End the request's read transaction, returning its database connection to the pool.

    Called before the request waits on Temporal (``api.workflow_calls.call``): a request must
    hold no connection while a workflow works, or concurrent actions (up to
    API_UPDATE_TIMEOUT_SECONDS each) exhaust the pool long before Temporal is busy. Rows read so
    far stay usable (sessions do not expire on commit); the next read takes a connection anew."""
    session = _request_session.get()
    if session is not None and session.in_transaction():
        await session.commit()


# Dependencies are ``async def`` even when they never wait: FastAPI runs a plain ``def``
# dependency in a worker thread, a thread hop per dependency per request.
async def get_temporal(request: Request) -> Client:
    client: Client = request.app.state.temporal
    return client


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_blobs(request: Request) -> BlobStore:
    """Where attachment bytes live (``app.state.blobs``; tests point it at a temporary folder)."""
    blobs: BlobStore = request.app.state.blobs
    return blobs


async def _blobs_dep(request: Request) -> BlobStore:
    return get_blobs(request)


SessionDep = Annotated[AsyncSession, Depends(get_session)]
BlobsDep = Annotated[BlobStore, Depends(_blobs_dep)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


# The two ways to send a key, as OpenAPI security schemes (either one will do). They are read by
# ``get_principal`` itself, not resolved as dependencies of their own (each dependency costs
# FastAPI's resolution on every request); ``api.openapi`` declares them for every operation that
# authenticates (``authenticates``), as FastAPI would for dependencies.
BEARER = HTTPBearer(
    scheme_name="bearerKey", description="`Authorization: Bearer <key>`", auto_error=False
)
X_API_KEY = APIKeyHeader(
    name="XApiKey",
    scheme_name="xApiKey",
    description="`XApiKey: <key>`; wins over `Authorization` when both are sent.",
    auto_error=False,
)
SECURITY_SCHEMES = (BEARER, X_API_KEY)


async def get_principal(request: Request) -> Principal:
    """Authenticate ``Authorization: Bearer <key>`` or ``XApiKey: <key>``; 401 otherwise.

    A key verified within API_KEY_CACHE_SECONDS is not looked up again (``api.keycache``);
    otherwise a session of its own looks it up and ends at once, so the request holds no
    database connection while it waits (on Temporal, on a duplicate's Idempotency-Key)."""
    x_api_key = await X_API_KEY(request)
    bearer = await BEARER(request)
    key = x_api_key or (bearer.credentials.strip() if bearer else None)
    if not key:
        raise unauthenticated()
    cache: KeyCache = request.app.state.key_cache
    principal = cache.get(key)
    if principal is None:
        async with request.app.state.sessions() as session:
            principal = await principal_for_key(session=session, key=key)
        if principal is None:
            raise unauthenticated()
        cache.put(key, principal)
    wait = request.app.state.rate_limiter.take(key)
    if wait is not None:
        raise rate_limited(wait)
    return principal


def authenticates(dependant: Dependant) -> bool:
    """Whether a route's FastAPI ``Dependant`` (or one of its dependencies) is ``get_principal``:
    its operation declares ``SECURITY_SCHEMES`` (api/openapi.py)."""
    return dependant.call is get_principal or any(
        authenticates(sub) for sub in dependant.dependencies
    )


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require_role(
    *roles: OrgKind, detail: str | None = None
) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets only the given roles through (403 for the others, with ``detail``
    when given). FastAPI resolves it before it validates the body, so a caller of another role
    gets 403 even for an invalid body."""
    allowed = ", ".join(r.value for r in roles)

    async def check(principal: CurrentPrincipal) -> Principal:
        if principal.role not in roles:
            raise forbidden(
                detail or f"Only {allowed} users may do this; you are {principal.role.value}."
            )
        return principal

    _ROLE_CHECKS.add(check)
    return check


_ROLE_CHECKS: set[Callable[[Principal], Awaitable[Principal]]] = set()


def is_role_check(call: object) -> bool:
    """Whether ``call`` is a ``require_role`` dependency (it may answer 403; api/openapi.py)."""
    return call in _ROLE_CHECKS


CreditorPrincipal = Annotated[Principal, Depends(require_role(OrgKind.CREDITOR))]
PartnerPrincipal = Annotated[Principal, Depends(require_role(OrgKind.PARTNER))]
OpsPrincipal = Annotated[Principal, Depends(require_role(OrgKind.OPS))]
PartnerOrOpsPrincipal = Annotated[Principal, Depends(require_role(OrgKind.PARTNER, OrgKind.OPS))]


async def visible_case(session: AsyncSession, case_id: UUID, principal: Principal) -> CaseRow:
    """The case if the caller may see it; 404 otherwise (another organisation's or unknown)."""
    row = await get_case(session=session, case_id=case_id, principal=principal)
    if row is None:
        raise not_found("Case")
    return row


def not_in_future(day: dt.date, field: str, principal: Principal) -> None:
    """422 naming ``field`` when a business date (an invoice date, a payment date) lies after
    today in the caller's time zone. The static range is ``domain.plausible.PlausibleDate``."""
    if day > dt.datetime.now(ZoneInfo(principal.timezone)).date():
        raise invalid(field, "must not be in the future")
