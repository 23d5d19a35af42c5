"""The OpenAPI document, made true in one place: every operation's error answers.

FastAPI documents the success answer of each route and the 422 of its own validation (with a
schema the API never sends). ``install`` replaces its ``app.openapi`` with one that, after
FastAPI built the document:

- gives every operation under ``/api`` the error answers its *kind* can produce
  (``error_statuses``: one table, read off the route, plus the statuses the route declares in
  ``responses=`` for its business outcomes), each described with the codes it carries
  (``CODES``) and the ``Problem`` schema as ``application/problem+json``;
- documents the ``Idempotency-Key`` header of every write;
- names the file types an upload may have (``ATTACHMENT_CONTENT_TYPES``) as the ``encoding``
  of every binary field of a multipart body;
- gives every free-text string the pattern of what the API accepts (``TEXT_PATTERN``): no NUL
  anywhere (``domain.base.ApiModel``, ``api.errors.check_no_nul``), and, where at least one
  character is required, one that is not white space (bodies are stripped before the length
  is checked);
- declares the two ways to send a key (``api.deps.SECURITY_SCHEMES``) for every operation that
  authenticates, where FastAPI would have put them had they been dependencies of their own;
- moves the ``$defs`` that pydantic leaves inside hand-written request bodies into
  ``components/schemas``, so no ``$ref`` dangles.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.encoders import jsonable_encoder
from fastapi.openapi.models import OpenAPI

from api import deps, idempotency
from api.errors import PROBLEM_JSON
from api.guard import GUARDED_PREFIX, UNGUARDED_PATHS
from api.routing import api_routes
from settings import Settings

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})

# -- what each kind of operation can answer ------------------------------------------------------
# Every operation under /api (the request guard, authentication, rate limit, query/path/header
# validation, the unexpected).
EVERY_OPERATION = frozenset({401, 422, 429, 431, 500})
# An operation with a path parameter: the case, task, relationship or attachment it names.
WITH_PATH_PARAMETERS = frozenset({404})
# A write (POST, PUT, PATCH): its body (malformed, too large) and its Idempotency-Key.
WRITES = frozenset({400, 409, 413, 422})
# An operation that calls Temporal: outages and refusals of the workflow service.
CALLS_TEMPORAL = frozenset({502, 503})
# An operation that only some roles may use.
ROLE_RESTRICTED = frozenset({403})

# The codes each status carries (docs/api.md "Errors" describes each).
CODES: dict[int, tuple[str, ...]] = {
    400: ("malformed_json", "invalid_utf8", "number_too_large", "nesting_too_deep"),
    401: ("unauthenticated",),
    403: ("forbidden", "not_a_party"),
    404: ("not_found", "task_not_found"),
    409: (
        "invalid_transition",
        "case_not_editable",
        "case_finished",
        "nothing_to_answer",
        "task_not_open",
        "task_not_resolvable_by_hand",
        "idempotency_conflict",
    ),
    413: ("payload_too_large", "attachment_too_large"),
    415: ("unsupported_media_type",),
    422: (
        "validation_failed",
        "invalid_header",
        "idempotency_key_reused",
        "duplicate_creditor_reference",
        "invalid_deadline",
    ),
    429: ("rate_limited",),
    431: ("headers_too_large",),
    500: ("internal_error", "projection_missing"),
    502: ("temporal_rejected",),
    503: ("temporal_unavailable", "workflow_busy"),
}

PROBLEM_REF = "#/components/schemas/Problem"
FIELD_ERROR_SCHEMA: dict[str, Any] = {
    "title": "FieldError",
    "type": "object",
    "required": ["field", "message"],
    "properties": {
        "field": {"type": "string", "description": "A camelCase path, parameter or header."},
        "message": {"type": "string"},
    },
}
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem. Switch on `code`; `detail` is for people.",
    "type": "object",
    "required": ["type", "title", "status", "code", "detail"],
    "properties": {
        "type": {"type": "string", "description": "`urn:caseloop:problem:<code>`"},
        "title": {"type": "string", "description": "The reason phrase of `status`."},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "code": {"type": "string", "description": "Stable and machine-readable."},
        "detail": {"type": "string"},
        "instance": {"type": "string", "description": "The request path."},
        "errors": {"type": "array", "items": {"$ref": "#/components/schemas/FieldError"}},
        "maxBytes": {"type": "integer", "description": "The limit of a 413 or 431."},
        "caseId": {
            "type": "string",
            "format": "uuid",
            "description": "The case of a `duplicate_creditor_reference`.",
        },
    },
}
IDEMPOTENCY_KEY_PARAMETER: dict[str, Any] = {
    "name": idempotency.HEADER,
    "in": "header",
    "required": False,
    "description": "Replays the first answer to a retry of the same request (docs/api.md).",
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": idempotency.MAX_KEY_LENGTH,
        # Not blank, no NUL, and (like any header value) no leading or trailing blanks.
        "pattern": r"^[^\s\x00]([^\x00]*[^\s\x00])?$",
    },
}


# Unicode White_Space: what pydantic's str_strip_whitespace removes (Rust's str::trim).
WHITE_SPACE = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
TEXT_PATTERN = r"^[^\x00]*$"
NON_BLANK_TEXT_PATTERN = rf"^[^\x00]*[^\x00{WHITE_SPACE}][^\x00]*$"
CONSTRAINED = ("format", "enum", "const", "pattern", "contentMediaType")


def _text_rules(node: Any) -> None:
    """Add ``TEXT_PATTERN`` (or ``NON_BLANK_TEXT_PATTERN``) to every free-text string schema."""
    if isinstance(node, dict):
        if node.get("type") == "string" and not any(key in node for key in CONSTRAINED):
            required = node.get("minLength", 0) >= 1
            node["pattern"] = NON_BLANK_TEXT_PATTERN if required else TEXT_PATTERN
        for value in node.values():
            _text_rules(value)
    elif isinstance(node, list):
        for item in node:
            _text_rules(item)


def _dependencies(dependant: Dependant) -> Iterator[Dependant]:
    for dependency in dependant.dependencies:
        yield dependency
        yield from _dependencies(dependency)


def _uses(route: Any, test: Callable[[Any], bool]) -> bool:
    return any(d.call is not None and test(d.call) for d in _dependencies(route.dependant))


def error_statuses(route: Any) -> set[int]:
    """The error statuses the route can answer: those of its kind, and those it declares."""
    statuses = set(EVERY_OPERATION)
    if route.dependant.path_params:
        statuses |= WITH_PATH_PARAMETERS
    if route.methods & WRITE_METHODS:
        statuses |= WRITES
    if _uses(route, lambda call: call is deps.get_temporal):
        statuses |= CALLS_TEMPORAL
    if _uses(route, deps.is_role_check):
        statuses |= ROLE_RESTRICTED
    statuses |= {int(status) for status in route.responses if int(status) >= 400}
    return statuses


def _error_response(status: int) -> dict[str, Any]:
    codes = ", ".join(f"`{code}`" for code in CODES[status])
    return {
        "description": f"Problem: {codes}.",
        "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}},
    }


def _hoist_defs(node: Any, schemas: dict[str, Any]) -> Any:
    """Move nested ``$defs`` into ``schemas`` and point their refs at components."""
    if isinstance(node, dict):
        for name, definition in node.pop("$defs", {}).items():
            schemas.setdefault(name, _hoist_defs(definition, schemas))
        return {
            key: (
                value.replace("#/$defs/", "#/components/schemas/")
                if key == "$ref" and isinstance(value, str)
                else _hoist_defs(value, schemas)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_hoist_defs(item, schemas) for item in node]
    return node


def _declare_file_types(operation: dict[str, Any], content_types: str) -> None:
    content = operation.get("requestBody", {}).get("content", {})
    multipart = content.get("multipart/form-data")
    if multipart is None:
        return
    properties = multipart["schema"].get("properties", {})
    encoding = multipart.setdefault("encoding", {})
    for name, prop in properties.items():
        binary = prop.get("items", prop).get("format") == "binary"
        if binary:
            encoding[name] = {"contentType": content_types}


# What FastAPI writes of an operation before its security requirement, in this order.
_OPERATION_HEAD = ("tags", "summary", "description", "operationId", "deprecated")


def _with_security(app: FastAPI, base: dict[str, Any]) -> dict[str, Any]:
    """``base`` with the security schemes and, on each operation that authenticates, the
    requirement of either scheme: what FastAPI writes for security dependencies, where it
    writes them (after the operation's head; then its ``OpenAPI`` model orders the keys of
    every operation it can read as one)."""
    requirement: list[dict[str, list[str]]] = [
        {scheme.scheme_name: []} for scheme in deps.SECURITY_SCHEMES
    ]
    doc = copy.deepcopy(base)
    used = False
    for route in api_routes(app):
        if route.include_in_schema and deps.authenticates(route.dependant):
            operations = doc["paths"][route.path_format]
            for method in route.methods:
                operation = operations[method.lower()]
                head = {k: operation.pop(k) for k in _OPERATION_HEAD if k in operation}
                operations[method.lower()] = {**head, "security": requirement, **operation}
                used = True
    if not used:
        return doc
    doc.setdefault("components", {})["securitySchemes"] = {
        scheme.scheme_name: jsonable_encoder(scheme.model, by_alias=True, exclude_none=True)
        for scheme in deps.SECURITY_SCHEMES
    }
    normalized: dict[str, Any] = jsonable_encoder(OpenAPI(**doc), by_alias=True, exclude_none=True)
    return normalized


def document(app: FastAPI, base: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """``base`` (FastAPI's document) with the error answers and fixes of the module doc."""
    doc = _with_security(app, base)
    schemas: dict[str, Any] = doc.setdefault("components", {}).setdefault("schemas", {})
    doc["paths"] = _hoist_defs(doc.get("paths", {}), schemas)
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    _text_rules(doc["paths"])
    _text_rules(schemas)
    schemas["Problem"] = PROBLEM_SCHEMA
    schemas["FieldError"] = FIELD_ERROR_SCHEMA
    for route in api_routes(app):
        if not route.include_in_schema:
            continue
        if not route.path_format.startswith(GUARDED_PREFIX) or route.path in UNGUARDED_PATHS:
            continue
        for method in route.methods:
            operation = doc["paths"][route.path_format][method.lower()]
            responses: dict[str, Any] = operation.setdefault("responses", {})
            for status in error_statuses(route):
                responses[str(status)] = _error_response(status)
            operation["responses"] = dict(sorted(responses.items()))
            if method in WRITE_METHODS:
                operation.setdefault("parameters", []).append(IDEMPOTENCY_KEY_PARAMETER)
            _declare_file_types(operation, ", ".join(settings.attachment_content_types))
    return doc


def install(app: FastAPI, settings: Settings) -> None:
    """Serve ``document`` as the app's OpenAPI document (built once, on first use)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app, build(), settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
