"""Calling an API route's own function from a page, with the signed-in user as the caller.

FastAPI would resolve a route's parameters from the request; a page resolves them from its own
request instead: the caller (after the route's role rule, ``api.deps.require_role``, exactly as
FastAPI runs it), a database session, the Temporal client, the settings, the blob store, the
case and task command contexts, the path values it names, and the body, built from the form by
the route's own body model. So a page can only do what the API lets the same user do, with the
same checks and the same errors: there is no second copy of any rule.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import Request, params
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from temporalio.client import Client

from api.deps import is_role_check
from api.routes.case_commands import CaseCommands
from api.routes.tasks import TaskAction
from settings import Settings
from store.accounts import Principal
from store.blobs import BlobStore


@functools.cache
def _parameters(route: Callable[..., Any]) -> list[tuple[str, Any, list[Any]]]:
    """(name, type, Annotated metadata) of each parameter of ``route``."""
    hints = typing.get_type_hints(route, include_extras=True)
    found = []
    for name in inspect.signature(route).parameters:
        hint = hints[name]
        metadata: list[Any] = []
        if typing.get_origin(hint) is typing.Annotated:
            hint, *metadata = typing.get_args(hint)
        found.append((name, hint, metadata))
    return found


def body_from_form(model: type[BaseModel], form: Mapping[str, Any]) -> BaseModel:
    """The route's body model from a form whose fields are named as the API's JSON
    (``debtor.name`` for a nested field). An empty field is left out, as a client would; a
    repeated field (a multiple select) or one whose field is a list gives a list; a field
    the model types as an integer is read as one (forms send text; the model then judges)."""
    items = form.multi_items() if isinstance(form, FormData) else list(form.items())
    data: dict[str, Any] = {}
    for key, value in items:
        if key == "csrf_token" or not isinstance(value, str) or value == "":
            continue
        *path, last = key.split(".")
        target, owner = data, model
        for part in path:
            target = target.setdefault(part, {})
            owner = _nested_model(owner, part) or owner
        value = _typed(owner, last, value)
        if last in target or _is_list(owner, last):
            held = target.get(last, [])
            target[last] = [*(held if isinstance(held, list) else [held]), value]
        else:
            target[last] = value
    return model.model_validate(data)


def _field(model: type[BaseModel], key: str) -> Any:
    for name, field in model.model_fields.items():
        if key in (name, field.alias):
            return field
    return None


def _nested_model(model: type[BaseModel], key: str) -> type[BaseModel] | None:
    field = _field(model, key)
    for candidate in typing.get_args(field.annotation) if field else ():
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    if field and isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
        return field.annotation
    return None


def _is_list(model: type[BaseModel], key: str) -> bool:
    field = _field(model, key)
    return field is not None and typing.get_origin(field.annotation) is list


def _typed(model: type[BaseModel], key: str, value: str) -> Any:
    field = _field(model, key)
    if field is not None and field.annotation in (int, int | None):
        try:
            return int(value)
        except ValueError:
            return value
    return value


async def role_rule(metadata: Any, principal: Principal) -> None:
    """Run the role rule (``api.deps.require_role``) among a principal alias's ``Annotated``
    metadata (``ChatPrincipal.__metadata__``, or a route parameter's): 403 for another role."""
    for marker in metadata:
        if isinstance(marker, params.Depends):
            check = marker.dependency
            if check is not None and is_role_check(check):
                await check(principal)


async def invoke(
    route: Callable[..., Awaitable[Any]],
    request: Request,
    principal: Principal,
    session: AsyncSession,
    *,
    form: FormData | Mapping[str, Any] | None = None,
    body: BaseModel | None = None,
    **values: Any,
) -> Any:
    """Call ``route`` as the API would for ``principal``; ``values`` are its path parameters.
    The body is ``body``, or else built from ``form`` with the route's body model."""
    state = request.app.state
    client: Client = state.temporal
    settings: Settings = state.settings
    parameters = _parameters(route)
    # The role rule first, as FastAPI runs it: another role gets 403 even for a bad form.
    for _, hint, metadata in parameters:
        if hint is Principal:
            await role_rule(metadata, principal)
    kwargs: dict[str, Any] = {}
    for name, hint, _ in parameters:
        if name in values:
            kwargs[name] = values[name]
        elif hint is Principal:
            kwargs[name] = principal
        elif hint is Request:
            kwargs[name] = request
        elif hint is AsyncSession:
            kwargs[name] = session
        elif hint is Client:
            kwargs[name] = client
        elif hint is Settings:
            kwargs[name] = settings
        elif hint is BlobStore:
            kwargs[name] = state.blobs
        elif hint is CaseCommands:
            kwargs[name] = CaseCommands(request, session, client)
        elif hint is TaskAction:
            kwargs[name] = TaskAction(request, principal, session, client, settings)
        elif isinstance(hint, type) and issubclass(hint, BaseModel):
            kwargs[name] = body if body is not None else body_from_form(hint, form or {})
        else:
            raise TypeError(f"a page cannot call {route.__name__}: {name}: {hint!r}")
    return await route(**kwargs)
