"""How the app finds a request's route and resolves its dependencies (issue 10: the API's own
work per request). Structure, not timings: bench/api_overhead.py measures the time."""

from __future__ import annotations

import inspect
import re
import uuid
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security.base import SecurityBase
from starlette.routing import Match, compile_path

from api.app import create_app
from api.deps import get_principal, get_session, request_session
from api.routing import FlatRoute, api_routes
from api.server import uvicorn_options
from settings import Settings
from tests.support import Actor


def _dependencies(dependant: Dependant) -> list[Any]:
    calls = []
    for sub in dependant.dependencies:
        calls.append(sub.call)
        calls.extend(_dependencies(sub))
    return calls


def _api_routes(settings: Settings) -> list[Any]:
    app = create_app(settings)
    return [route for route in app.routes if getattr(route, "path", "").startswith("/api/")]


def test_every_api_route_is_the_apps_own_flat_route(settings: Settings) -> None:
    """No included-router branch to walk: every ``/api`` route the app resolves is one of its
    own routes, each a ``FlatRoute``."""
    app = create_app(settings)
    resolved = {r.path for r in api_routes(app) if r.path.startswith("/api/")}
    own = _api_routes(settings)
    assert resolved == {route.path for route in own}
    assert own and all(type(route) is FlatRoute for route in own)


def _example_paths(template: str) -> list[str]:
    """Paths near ``template``: itself with values for its parameters, and variants that
    differ by a segment, a slash or a suffix."""
    filled = re.sub(r"\{[^}]+\}", "0b7e5d4c-1f2a-4e3b-9c8d-7a6b5c4d3e2f", template)
    short = filled.rsplit("/", 1)[0]
    return [filled, filled + "/", filled + "/x", short, short + "/x", filled + "x", "/api/x"]


def test_a_flat_route_turns_away_only_paths_its_pattern_does_not_match(
    settings: Settings,
) -> None:
    routes = _api_routes(settings)
    paths = {p for route in routes for p in _example_paths(route.path_format)}
    for route in routes:
        regex, _, _ = compile_path(route.path)
        for path in paths:
            for method in ("GET", "POST"):
                scope = {"type": "http", "method": method, "path": path, "root_path": ""}
                match, _ = route.matches(scope)
                plain, _ = APIRoute.matches(route, scope)
                assert match is plain, (route.path, path, method)
                assert (match is not Match.NONE) is bool(regex.match(path)), (route.path, path)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/cases"),
        ("POST", "/api/cases/{case_id}/chats"),
        ("POST", "/api/cases/{case_id}/status"),
        ("POST", "/api/cases/{case_id}/assign"),
        ("POST", "/api/cases/{case_id}/accept"),
        ("PUT", "/api/cases/{case_id}/bank-account"),
        ("POST", "/api/account/contract/sign"),
    ],
)
def test_a_write_resolves_its_caller_and_session_without_dependencies_of_their_own(
    settings: Settings, method: str, path: str
) -> None:
    """FastAPI resolves every dependency on every request: the key headers are read by
    ``get_principal`` itself (not by security-scheme dependencies), which depends on nothing,
    and the session is a plain dependency (not one with ``yield``)."""
    routes = api_routes(create_app(settings))
    [route] = [r for r in routes if r.path == path and method in r.methods]
    calls = _dependencies(route.dependant)
    assert get_principal in calls
    assert not [call for call in calls if isinstance(call, SecurityBase)]
    principal = next(sub for sub in _walk(route.dependant) if sub.call is get_principal)
    assert principal.dependencies == []
    assert not inspect.isasyncgenfunction(get_session)


def _walk(dependant: Dependant) -> list[Dependant]:
    found = []
    for sub in dependant.dependencies:
        found.append(sub)
        found.extend(_walk(sub))
    return found


def test_the_api_server_runs_on_uvloop() -> None:
    import uvloop

    config = uvicorn.Config("api.app:create_app", factory=True, **uvicorn_options())
    assert config.get_loop_factory() is uvloop.new_event_loop


async def test_a_requests_session_is_closed_once_it_is_answered_also_after_an_error(
    settings: Settings, creditor: Actor
) -> None:
    """``get_session`` is a plain dependency; ``RequestSessions`` closes what it opened."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        pool = app.state.sessions.kw["bind"].sync_engine.pool
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://caseloop.test") as api:
            listed = await api.get("/api/cases", headers=creditor.headers)
            assert listed.status_code == 200, listed.text
            assert pool.checkedout() == 0
            missing = await api.get(f"/api/cases/{uuid.uuid4()}", headers=creditor.headers)
            assert missing.status_code == 404
            assert pool.checkedout() == 0
    assert request_session() is None
