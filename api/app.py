"""The FastAPI application factory."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from temporalio.client import Client

import portal
from api import errors, openapi
from api.access_log import hide_query_strings
from api.deadline import RequestDeadline
from api.deps import RequestSessions
from api.guard import RequestGuard
from api.keycache import KeyCache
from api.query import reject_unknown_query
from api.ratelimit import RateLimiter
from api.routes import (
    account,
    bank_accounts,
    case_commands,
    case_explain,
    case_files,
    case_notes,
    case_references,
    case_work,
    cases,
    chat,
    codec,
    divisions,
    health,
    me,
    orphans,
    payments,
    relationships,
    tasks,
    users,
    webhook_events,
    webhooks,
)
from api.routing import include
from observability import logs, tracing
from observability.http import RequestMetrics
from settings import Settings, get_settings
from store.blobs import BlobStore, LocalBlobStore
from store.db import create_engine, session_factory
from temporal_client import connect

DESCRIPTION = """
caseloop's HTTP API. Authenticate every request with `Authorization: Bearer <key>` or
`XApiKey: <key>`. JSON is camelCase; errors are RFC 9457 `application/problem+json` with a stable
`code`. POSTs accept an `Idempotency-Key`. See docs/api.md for the conventions.
"""


def create_app(
    settings: Settings | None = None,
    *,
    temporal: Client | None = None,
    blobs: BlobStore | None = None,
) -> FastAPI:
    """Build the app. Tests pass their own Temporal client; otherwise one connects lazily.
    Attachments go to ``blobs``, by default a ``LocalBlobStore`` in BLOB_DIR."""
    settings = settings or get_settings()
    hide_query_strings()
    # Off (None) unless an OTLP endpoint is configured: then every request is a span, and the
    # Temporal client this app connects carries it on (observability/tracing.py).
    tracer_provider = tracing.tracer_provider(settings, "api")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(
            settings.database_url,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
        )
        app.state.settings = settings
        app.state.sessions = session_factory(engine)
        # Lazy: the API starts (and /api/health reports the outage) even while Temporal is down.
        # Fail fast: a request answers 503 temporal_unavailable rather than retry for seconds.
        app.state.temporal = temporal or await connect(
            settings,
            lazy=True,
            fail_fast=True,
            interceptors=tracing.temporal_interceptors(tracer_provider),
        )
        # What exists now (modules, the app, its routes and models) lives as long as the
        # process: keep it out of the collector's full passes, which otherwise walk all of it
        # and pause a request now and then (tens of milliseconds on a busy machine).
        gc.freeze()
        try:
            yield
        finally:
            await engine.dispose()
            if tracer_provider is not None:
                tracer_provider.shutdown()  # exports the spans still buffered

    app = FastAPI(
        title="caseloop",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
    )
    # Set here, not in the lifespan, so tests can swap the store before the first request.
    app.state.blobs = blobs or LocalBlobStore(settings.blob_directory)
    app.state.tracer_provider = tracer_provider
    app.state.key_cache = KeyCache(seconds=settings.api_key_cache_seconds)
    app.state.rate_limiter = RateLimiter(
        per_minute=settings.rate_limit_per_minute, burst=settings.rate_limit_burst
    )
    errors.install(app)
    openapi.install(app, settings)
    # Innermost: closes the sessions of a request (api.deps.get_session) once it is done.
    app.add_middleware(RequestSessions)
    # Before FastAPI reads a body: 401 without a key header, 413 past the body size cap.
    app.add_middleware(RequestGuard, settings=settings)
    # Outside the guard: a browser's CORS preflight carries no key.
    app.add_middleware(codec.CodecCORS, settings=settings)
    # Outermost: API_UPDATE_TIMEOUT_SECONDS bounds the whole request (api/deadline.py).
    app.add_middleware(RequestDeadline, settings=settings)
    # Outside everything: every request is counted and timed by its route template, answers
    # of the guard and the deadline included (observability/http.py). Served on
    # API_METRICS_PORT, never on this app (api/server.py).
    app.add_middleware(RequestMetrics)
    if settings.log_format == "json":
        # Around everything: each log line of the request names it (observability/logs.py).
        app.add_middleware(logs.RequestIds)
    # In this order, flat (api.routing.include): a request is matched against each route once.
    for router in (
        health.router,
        # Before ``cases``: its ``/cases/{id}/...`` would take ``/cases/by-creditor-reference/...``.
        case_references.router,
        cases.router,
        case_commands.router,
        case_work.router,
        chat.router,
        case_notes.router,
        relationships.router,
        tasks.router,
        bank_accounts.router,
        account.router,
        codec.router,
        case_explain.router,
        orphans.router,
        me.router,
        users.router,
        case_files.router,
        payments.router,
        # Before ``webhooks``: its ``/webhooks/{id}`` would take ``/webhooks/events``.
        webhook_events.router,
        webhooks.router,
        divisions.router,
    ):
        # Before the route's own dependencies: a query parameter the endpoint does not read is
        # a 422 (api/query.py).
        include(app.router, router, prefix="/api", dependencies=[Depends(reject_unknown_query)])
    portal.install(app, settings)
    if tracer_provider is not None:
        tracing.instrument(app, tracer_provider)
    return app
