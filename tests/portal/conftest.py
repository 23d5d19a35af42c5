"""The portal behind the real app, without Temporal: sign-in and the read pages need none."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

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
