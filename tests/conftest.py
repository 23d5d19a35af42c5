"""Fixtures: Temporal servers from the bundled binaries, the read-model database, the API."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from domain import search_attributes as sa
from domain.enums import OrgKind
from settings import Settings
from store.db import create_engine, session_factory
from store.migrate import upgrade
from store.models import Base
from tests.support import (
    TEST_DATA_CONVERTER,
    TEST_PAYLOAD_KEYS,
    TEST_PORTAL_SECRET_KEY,
    Actor,
    bundled_binary,
    free_socket,
    make_actor,
    serve,
)
from worker import build_worker

TEST_DATABASE_URL = "CASELOOP_TEST_DATABASE_URL"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Every test that touches the read model is marked `db`, so .ci/run can re-run exactly those
    # against PostgreSQL.
    for item in items:
        if "sessions" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.db)


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal dev server (the one `make run` uses), with caseloop's search attributes."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=bundled_binary("temporal"),
        data_converter=TEST_DATA_CONVERTER,
        search_attributes=sa.ALL,
        dev_server_log_level="error",
    )
    yield env
    await env.shutdown()


async def start_time_skipping() -> WorkflowEnvironment:
    """A time-skipping test server of its own, with the search attributes registered."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=bundled_binary("temporal-test-server"),
        data_converter=TEST_DATA_CONVERTER,
    )
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={
                key.name: IndexedValueType.ValueType(key.indexed_value_type) for key in sa.ALL
            },
        )
    )
    return env


@pytest.fixture
async def ts_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping test server of the test's own: months of timers in seconds.

    One per test, not one per session (it starts in about 0.1 s): the test server skips time
    only while no workflow task or activity is outstanding, so a workflow an earlier test left
    behind (a child it abandoned, one on another task queue), whose timer fires for a worker
    that is gone, stops the clock for every later test on a shared server: their ``env.sleep``
    waits in real time until it times out ("Timeout expired"), as 11 tests did when
    tests/workflows ran after the rest of the suite in one process (docs/operations.md, "Tests
    and CI")."""
    env = await start_time_skipping()
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """SQLite in a temporary folder, or the database named by CASELOOP_TEST_DATABASE_URL."""
    url = os.environ.get(TEST_DATABASE_URL) or (
        f"sqlite:///{Path(tmp_path_factory.mktemp('db')) / 'caseloop.db'}"
    )
    upgrade(url)
    return url


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on an emptied read model."""
    engine = create_engine(database_url)
    factory = session_factory(engine)
    async with factory() as session, session.begin():
        for table in reversed(Base.metadata.sorted_tables):
            await session.execute(delete(table))
    yield factory
    await engine.dispose()


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4()}"


@pytest.fixture
async def worker(
    dev_env: WorkflowEnvironment, task_queue: str, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Worker]:
    """A fresh worker for this test, on its own task queue, against the dev server."""
    async with build_worker(dev_env.client, task_queue=task_queue, sessions=sessions) as running:
        yield running


@pytest.fixture
def settings(database_url: str, task_queue: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        temporal_task_queue=task_queue,
        portal_base_url="https://portal.example.test",
        api_update_timeout_seconds=20,
        blob_dir=tmp_path / "blobs",
        # Tests poll the API in tight loops; tests/api/test_rate_limit.py turns limiting on.
        rate_limit_per_minute=0,
        payload_keys=TEST_PAYLOAD_KEYS,
        portal_secret_key=TEST_PORTAL_SECRET_KEY,
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
async def api(
    settings: Settings, dev_env: WorkflowEnvironment, worker: Worker
) -> AsyncIterator[httpx.AsyncClient]:
    """The real app, talking to the dev server, with a worker running."""
    app = create_app(settings, temporal=dev_env.client)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://caseloop.test"
        ) as client:
            yield client


@pytest.fixture
async def served(
    settings: Settings, dev_env: WorkflowEnvironment, worker: Worker
) -> AsyncIterator[str]:
    """The real app behind a real uvicorn server (``api.server`` options) on a free port of
    127.0.0.1, in the test's event loop beside the worker; yields its base URL."""
    sock = free_socket()
    async with serve(create_app(settings, temporal=dev_env.client), sock) as url:
        yield url


@pytest.fixture
async def creditor(sessions: async_sessionmaker[AsyncSession]) -> Actor:
    return await make_actor(sessions, OrgKind.CREDITOR)


@pytest.fixture
async def partner(sessions: async_sessionmaker[AsyncSession]) -> Actor:
    return await make_actor(sessions, OrgKind.PARTNER)


@pytest.fixture
async def ops(sessions: async_sessionmaker[AsyncSession]) -> Actor:
    return await make_actor(sessions, OrgKind.OPS)
