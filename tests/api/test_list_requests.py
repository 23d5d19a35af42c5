"""What one list request costs the API: ``GET /api/tasks`` and ``GET /api/cases`` read their page
and its total in one statement, and resolve their dependencies without a thread hop
(docs/performance.md "List reads")."""

from __future__ import annotations

import datetime as dt
import gc
import inspect
from collections.abc import Iterator
from typing import Any

import httpx
from fastapi.dependencies.models import Dependant
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.projection import write_tasks
from api.app import create_app
from api.routing import api_routes
from domain.tasks import AccessLevel
from settings import Settings
from store.cursor import encode_cursor
from store.db import transaction
from store.models import NO_DEADLINE
from tests.support import SEED_TIME as NOW
from tests.support import Actor, add_case, make_task, reads


async def test_a_list_page_and_its_total_are_one_statement(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    case_id = await add_case(sessions, creditor, partner=partner)
    tasks = [
        make_task(creditor, access=AccessLevel.CREDITOR, case_id=case_id, deadline=NOW)
        for _ in range(3)
    ]
    async with transaction(sessions) as session:
        await write_tasks(session, tasks)
    await api.get("/api/tasks", headers=creditor.headers)  # the key look-ups, once each
    await api.get("/api/tasks", headers=partner.headers)
    await api.get("/api/tasks", headers=ops.headers)
    requests = [
        (creditor, "/api/tasks", {}, 3),
        (creditor, "/api/tasks", {"status": "Open", "type": "Generic", "overdue": "false"}, 3),
        (creditor, "/api/tasks", {"caseId": str(case_id), "pageSize": 2}, 3),
        (creditor, "/api/tasks", {"status": "Solved"}, 0),  # nothing matches: still one
        (ops, "/api/tasks", {}, 3),
        (creditor, "/api/cases", {}, 1),
        (creditor, "/api/cases", {"debtorName": "paging", "status": "In Collection"}, 1),
        (partner, "/api/cases", {}, 1),  # assigned and invited: two branches, one statement
        (ops, "/api/cases", {"lifecycle": "Paused"}, 0),
    ]
    for actor, path, params, total in requests:
        with reads() as statements:
            response = await api.get(path, params=params, headers=actor.headers)
        assert response.status_code == 200, response.text
        assert response.json()["page"]["totalResults"] == total, (path, params)
        assert len(statements) == 1, (path, params, statements)


async def test_a_page_past_the_last_still_counts_every_match(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    case_id = await add_case(sessions, creditor)
    async with transaction(sessions) as session:
        await write_tasks(
            session,
            [
                make_task(creditor, access=AccessLevel.CREDITOR, case_id=case_id, deadline=None)
                for _ in range(3)
            ],
        )
    beyond = encode_cursor("tasks", (NO_DEADLINE.isoformat(), NOW.isoformat(), "~"))
    later = NOW - dt.timedelta(days=3650)
    for path, params in (
        ("/api/tasks", {"page": 5}),
        ("/api/tasks", {"after": beyond}),
        ("/api/cases", {"page": 3}),
        ("/api/cases", {"after": encode_cursor("cases", (later.isoformat(), str(case_id)))}),
    ):
        response = await api.get(path, params=params, headers=creditor.headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["tasks" if path == "/api/tasks" else "cases"] == []
        expected = 3 if path == "/api/tasks" else 1
        assert body["page"]["totalResults"] == expected, (path, params)
        assert body["page"]["responseCount"] == 0
        assert "nextCursor" not in body["page"]


def _dependencies(dependant: Dependant) -> Iterator[Any]:
    for dependency in dependant.dependencies:
        yield dependency.call
        yield from _dependencies(dependency)


def _awaited(call: Any) -> bool:
    return (
        inspect.iscoroutinefunction(call)
        or inspect.isasyncgenfunction(call)
        or (not inspect.isfunction(call) and inspect.iscoroutinefunction(type(call).__call__))
    )


def test_list_dependencies_never_run_in_a_worker_thread(settings: Settings) -> None:
    """FastAPI runs a plain ``def`` dependency in a thread: a hop per dependency per request."""
    app = create_app(settings)
    lists = [
        route
        for route in api_routes(app)
        if route.path in ("/api/tasks", "/api/cases") and "GET" in route.methods
    ]
    assert len(lists) == 2
    for route in lists:
        threaded = [call for call in _dependencies(route.dependant) if not _awaited(call)]
        assert threaded == [], (route.path, threaded)


async def test_the_api_keeps_its_startup_objects_out_of_full_collections(
    api: httpx.AsyncClient,
) -> None:
    assert gc.get_freeze_count() > 0
