"""The app's routes: added flat (``include``), and as FastAPI resolves them (for the OpenAPI
document and the 405 answer)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, params, routing
from fastapi.routing import APIRoute
from starlette._utils import get_route_path
from starlette.convertors import (
    FloatConvertor,
    IntegerConvertor,
    StringConvertor,
    UUIDConvertor,
)
from starlette.routing import Match
from starlette.types import Scope

# Path parameters of these convertors never match a "/".
_NO_SLASH = (StringConvertor, IntegerConvertor, FloatConvertor, UUIDConvertor)


# What ``APIRouter.add_api_route`` takes beside the path and the endpoint: every one of them is
# also an attribute of the ``APIRoute`` it makes.
_ROUTE_OPTIONS = tuple(
    name
    for name in inspect.signature(APIRouter.add_api_route).parameters
    if name not in ("self", "path", "endpoint", "route_class_override")
)


class FlatRoute(APIRoute):
    """An ``APIRoute`` that turns a path away cheaply when its pattern cannot match: the app
    tries its routes in order, and most requests pass dozens of them before their own.

    A path the pattern matches starts with the pattern's text before its first parameter, ends
    with the text after its last one and, when no parameter can hold a "/", has as many "/" as
    the pattern. Other paths are not matched; every path that passes is matched by the
    pattern itself, as before."""

    def __init__(self, path: str, endpoint: Any, **options: Any) -> None:
        super().__init__(path, endpoint, **options)
        template = self.path_format
        self._head = template.split("{", 1)[0]
        self._tail = template.rsplit("}", 1)[-1]
        no_slash = all(isinstance(c, _NO_SLASH) for c in self.param_convertors.values())
        self._slashes = template.count("/") if no_slash else None

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http":
            path = get_route_path(scope)
            if (
                not path.startswith(self._head)
                or not path.endswith(self._tail)
                or (self._slashes is not None and path.count("/") != self._slashes)
            ):
                return Match.NONE, {}
        return super().matches(scope)


def include(
    parent: APIRouter,
    router: APIRouter,
    prefix: str = "",
    dependencies: Sequence[params.Depends] = (),
) -> None:
    """Add ``router``'s routes to ``parent`` as ``parent``'s own, their paths under ``prefix``,
    with every option they were declared with (so the OpenAPI document is the same), and
    ``dependencies`` run before their own (as ``include_router``'s would).

    Unlike ``include_router``: FastAPI 0.165 keeps an included router as a branch and matches
    a request through every branch in turn, twice over (to find the route, then again to handle
    it), and asks each branch whether its routes changed since: about 0.4 ms of CPU per request
    for a route late in the app. Flat, a request is matched once against each route's pattern,
    in the same order (``FlatRoute`` turns most of them away without running their pattern)."""
    for route in router.routes:
        if type(route) is not APIRoute:
            raise TypeError(f"{route!r}: only plain APIRoutes are added flat")
        options = {name: getattr(route, name) for name in _ROUTE_OPTIONS}
        options["dependencies"] = [*dependencies, *route.dependencies]
        parent.add_api_route(
            prefix + route.path, route.endpoint, route_class_override=FlatRoute, **options
        )


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
