"""Query parameters: the types shared by the list endpoints, with the schema of what they accept,
and the refusal of any parameter an endpoint does not read (``reject_unknown_query``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import Request
from fastapi.routing import APIRoute
from pydantic import AfterValidator, BeforeValidator, WithJsonSchema

from api.errors import FieldError, Problem
from domain.base import not_a_number
from domain.time import check_timestamp

# An ISO 8601 timestamp, or a plain date (midnight UTC). The API also reads a timestamp without
# an offset (as UTC), which the schema leaves to its description.
QueryTimestamp = Annotated[
    dt.datetime,
    BeforeValidator(not_a_number),
    AfterValidator(check_timestamp),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date-time"},
                {"type": "string", "format": "date"},
            ],
            "description": "ISO 8601, in the years 1900 to 2099; without an offset it is read "
            "as UTC, a date as midnight UTC.",
        }
    ),
]


# -- unknown query parameters --------------------------------------------------------------------
# The names each route declares (its own query parameters and those of its dependencies, hidden
# aliases such as ``Page`` included), found once per route: ``id(route)`` since a route compares
# by value and is not hashable.
_DECLARED: dict[int, frozenset[str]] = {}


def declared_query_names(route: APIRoute) -> frozenset[str]:
    """Every query parameter name ``route`` reads, through its whole dependency tree."""
    names = _DECLARED.get(id(route))
    if names is None:
        found: set[str] = set()
        pending = [route.dependant]
        while pending:
            dependant = pending.pop()
            found.update(field.alias for field in dependant.query_params)
            pending.extend(dependant.dependencies)
        names = _DECLARED[id(route)] = frozenset(found)
    return names


async def reject_unknown_query(request: Request) -> None:
    """422 naming each query parameter the matched route does not read: a filter that is
    silently ignored answers wrong data with 200 (a misspelt ``Statuses``, a ``DebtorIds``
    caseloop has no debtor records for). One dependency of the ``/api`` router (api/app.py), so every
    endpoint, present and future, refuses them alike; names are case-sensitive."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    declared = declared_query_names(route)
    unknown = [name for name in dict.fromkeys(request.query_params.keys()) if name not in declared]
    if unknown:
        accepted = ", ".join(sorted(declared)) or "none"
        raise Problem(
            422,
            "validation_failed",
            "Unknown query parameter: "
            + ", ".join(unknown)
            + f" (this endpoint reads: {accepted}).",
            errors=[
                FieldError(name, "is not a query parameter of this endpoint") for name in unknown
            ],
        )
