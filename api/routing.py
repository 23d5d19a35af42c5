"""The app's routes as FastAPI resolves them (for the OpenAPI document and the 405 answer)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, routing
from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import Scope


def api_routes(app: FastAPI) -> Iterator[Any]:
    """Every ``APIRoute`` of the app with its full path (FastAPI 0.165 keeps included routers
    as such and resolves their routes through ``iter_route_contexts``; older ones copy them)."""
    contexts = getattr(routing, "iter_route_contexts", None)
    if contexts is None:
        yield from (route for route in app.routes if isinstance(route, APIRoute))
        return
    for context in contexts(app.routes):
        if isinstance(context.original_route, APIRoute):
            yield context


def allowed_methods(app: FastAPI, scope: Scope) -> set[str]:
    """The methods of every route whose path matches the request's (for ``Allow``)."""
    methods: set[str] = set()
    for route in api_routes(app):
        match, _ = route.matches(scope)
        if match is not Match.NONE:
            methods |= set(route.methods)
    return methods
