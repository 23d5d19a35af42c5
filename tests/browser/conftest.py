"""Browser tests: the portal in Debian's chromium (never a downloaded browser), driven by
Playwright, against the real app behind uvicorn. Marked ``browser``: `make test` leaves them
out and .ci/run runs them (installing chromium with apt where it is missing)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, async_playwright
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from settings import Settings
from tests.support import free_socket, serve


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in item.nodeid:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
async def chromium() -> AsyncIterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        raise RuntimeError("chromium is not installed: `apt-get install -y chromium`")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, args=["--no-sandbox", "--disable-gpu"]
        )
        yield browser
        await browser.close()


@pytest.fixture
async def site(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[str]:
    """The app on a free port, its portal links pointing at it; yields the portal's URL."""
    sock = free_socket()
    port = sock.getsockname()[1]
    local = settings.model_copy(update={"portal_base_url": f"http://127.0.0.1:{port}/portal"})
    async with serve(create_app(local), sock) as url:
        yield url + "/portal"


@pytest.fixture
async def live_site(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    dev_env: WorkflowEnvironment,
    worker: Worker,
) -> AsyncIterator[tuple[str, str]]:
    """``site`` with Temporal and a worker behind it; yields (portal URL, API URL)."""
    sock = free_socket()
    port = sock.getsockname()[1]
    local = settings.model_copy(update={"portal_base_url": f"http://127.0.0.1:{port}/portal"})
    async with serve(create_app(local, temporal=dev_env.client), sock) as url:
        yield url + "/portal", url


@pytest.fixture
async def page(chromium: Browser) -> AsyncIterator[Page]:
    context = await chromium.new_context()
    page = await context.new_page()
    page.set_default_timeout(15_000)
    yield page
    await context.close()
