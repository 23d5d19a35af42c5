"""The portal behind the real app: without Temporal for sign-in and the read pages
(``portal``), with the dev server and a worker for the pages that act (``live_portal``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from settings import Settings


@pytest.fixture
async def portal(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like client of the portal: it keeps cookies and does not follow redirects.
    https, as the test settings' portal is, so the Secure cookies are sent back."""
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=("203.0.113.7", 50000)),
            base_url="https://caseloop.test",
        ) as client,
    ):
        yield client


@pytest.fixture
async def live_portal(
    settings: Settings, dev_env: WorkflowEnvironment, worker: Worker
) -> AsyncIterator[httpx.AsyncClient]:
    """``portal`` with Temporal and a worker behind it, for the pages that act. The same client
    calls the API (with an actor's key headers) to set a case up."""
    app = create_app(settings, temporal=dev_env.client)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=("203.0.113.8", 50000)),
            base_url="https://caseloop.test",
        ) as client,
    ):
        yield client
