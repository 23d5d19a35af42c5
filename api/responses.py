"""Answering with a model serialized once.

A route that returns a model has FastAPI validate it against ``response_model`` and serialize
it; a route that builds its model from rows it trusts (``api.routes.tasks.task_view``) answers
with ``json_response`` instead and keeps ``response_model`` for the OpenAPI document. The bytes
are the same: the model's JSON by alias, as FastAPI writes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from fastapi import Response
from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


def json_response(
    model: BaseModel, *, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        model.__pydantic_serializer__.to_json(model, by_alias=True),
        status_code=status_code,
        headers=headers,
        media_type="application/json",
    )


def trusted(cls: type[M], **fields: Any) -> M:
    """A ``cls`` holding ``fields`` as they are, every field given by its name: what
    ``model_construct`` makes, without its per-field work (defaults, aliases), which cost about
    as much as serializing the model. For views of rows validated when they were written."""
    if fields.keys() != cls.model_fields.keys():
        raise TypeError(f"{cls.__name__} needs exactly its fields, not {sorted(fields)}")
    model = cls.__new__(cls)
    object.__setattr__(model, "__dict__", fields)
    object.__setattr__(model, "__pydantic_fields_set__", set(fields))
    object.__setattr__(model, "__pydantic_extra__", None)
    object.__setattr__(model, "__pydantic_private__", None)
    return model
