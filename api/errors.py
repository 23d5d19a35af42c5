"""RFC 9457 problem+json errors with a stable ``code`` and field-level ``errors``."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from pydantic.alias_generators import to_camel
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.deadline import current_budget
from api.routing import allowed_methods

PROBLEM_JSON = "application/problem+json"
logger = logging.getLogger(__name__)


class FieldError(dict[str, str]):
    """``{"field": "debtor.countryAlpha2", "message": "..."}``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(field=field, message=message)


class Problem(Exception):
    """An error the API reports as problem+json. ``code`` is stable; clients may switch on it."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        errors: Sequence[FieldError] = (),
        headers: Mapping[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail
        self.errors, self.headers, self.extra = list(errors), headers, extra or {}

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"urn:caseloop:problem:{self.code}",
            "title": HTTPStatus(self.status).phrase,
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        return body

    def response(self, instance: str | None = None) -> JSONResponse:
        return JSONResponse(
            self.body(instance),
            status_code=self.status,
            headers=self.headers,
            media_type=PROBLEM_JSON,
        )


class WorkflowRejection(Problem):
    """A business rejection a workflow answered to an update (``api.workflow_calls.call``), as
    opposed to a problem the API found itself before it sent anything."""


def unauthenticated() -> Problem:
    return Problem(
        401,
        "unauthenticated",
        "Send a valid API key as 'Authorization: Bearer <key>' or 'XApiKey: <key>'.",
        headers={"WWW-Authenticate": "Bearer"},
    )


def rate_limited(retry_after: int) -> Problem:
    return Problem(
        429,
        "rate_limited",
        f"Too many requests with this API key; retry in {retry_after} s.",
        headers={"Retry-After": str(retry_after)},
    )


def forbidden(detail: str) -> Problem:
    return Problem(403, "forbidden", detail)


def not_found(what: str) -> Problem:
    return Problem(404, "not_found", f"{what} not found.")


def invalid(field: str, message: str, *, code: str = "validation_failed") -> Problem:
    """422 for one bad field."""
    return Problem(422, code, f"{field}: {message}", errors=[FieldError(field, message)])


NUL = "\x00"


def check_no_nul(field: str, value: str | None) -> None:
    """422 for free text (a query parameter, a path id) holding a NUL character: PostgreSQL
    cannot compare or store it, and would fail the query with a 500."""
    if value is not None and NUL in value:
        raise invalid(field, "must not contain NUL (\\u0000) characters")


# The database is down, restarting, locked or unreachable: the request may be retried.
DATABASE_OUTAGES: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
    ConnectionError,
)


def database_unavailable() -> Problem:
    """503 for a database outage. If a workflow had already accepted the request's change, say
    so: the change is not lost, only its answer (a retry with the same Idempotency-Key gets it)."""
    budget = current_budget()
    if budget is not None and budget.applied:
        return Problem(
            503,
            "database_unavailable",
            "The change was applied, but the database is unreachable, so its result cannot be "
            "read. Retry with the same Idempotency-Key to get the result; without one, do not "
            "repeat the request.",
            headers={"Retry-After": "5"},
            extra={"applied": True},
        )
    return Problem(
        503,
        "database_unavailable",
        "The database is unreachable; nothing was changed, and it is safe to retry the same "
        "request.",
        headers={"Retry-After": "5"},
        extra={"applied": False},
    )


def _field_path(location: Sequence[str | int]) -> str:
    # Drop the "body"/"query" prefix and any pydantic type tags; keep camelCase names.
    parts: list[str] = []
    for i, item in enumerate(location):
        if i == 0 and item in ("body", "query", "path", "header"):
            continue
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif "[" in item or item.startswith("function-"):
            continue
        else:
            # A PascalCase alias (``PageSize``) names the camelCase parameter (``pageSize``).
            name = to_camel(item) if "_" in item else item[:1].lower() + item[1:]
            parts.append(("." if parts else "") + name)
    return "".join(parts) or "body"


def validation_problem(errors: Sequence[Any]) -> Problem:
    """422 naming every invalid field, from pydantic/FastAPI errors."""
    fields = [
        FieldError(_field_path(error["loc"]), error["msg"].removeprefix("Value error, "))
        for error in errors
    ]
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return Problem(422, "validation_failed", f"Invalid input: {summary}", errors=fields)


def answer(request: Request, problem: Problem) -> Response:
    """``problem`` as problem+json; as an HTML page below a prefix that registered a renderer
    in ``app.state.html_problems`` (the portal's pages: ``portal.install``)."""
    html = getattr(request.app.state, "html_problems", None)
    if html is not None and request.url.path.startswith(html[0]):
        page: Response = html[1](request, problem)
        return page
    return problem.response(request.url.path)


def install(app: FastAPI) -> None:
    """Route every error through problem+json (or the portal's error page, ``answer``)."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        return answer(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _request_validation(request: Request, exc: RequestValidationError) -> Response:
        return answer(request, validation_problem(exc.errors()))

    @app.exception_handler(ValidationError)
    async def _validation(request: Request, exc: ValidationError) -> Response:
        return answer(request, validation_problem(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names the methods of the first matching route only; a path has one
            # route per method, so name them all.
            headers["Allow"] = ", ".join(sorted(allowed_methods(app, request.scope)))
        return answer(request, Problem(exc.status_code, code, str(exc.detail), headers=headers))

    async def _database(request: Request, exc: Exception) -> Response:
        logger.warning("database unavailable: %s", type(exc).__name__)
        return answer(request, database_unavailable())

    for outage in DATABASE_OUTAGES:
        app.add_exception_handler(outage, _database)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        return answer(
            request, Problem(500, "internal_error", "Unexpected error; it has been logged.")
        )
