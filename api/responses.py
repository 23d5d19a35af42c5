"""Answering with a model serialized once.

A route that returns a model has FastAPI validate it against ``response_model`` and serialize
it; a route that builds its model from rows it trusts (``api.routes.tasks.task_view``) answers
with ``json_response`` instead and keeps ``response_model`` for the OpenAPI document. The bytes
are the same: the model's JSON by alias, as FastAPI writes it.
"""

from __future__ import annotations

from fastapi import Response
from pydantic import BaseModel


def json_response(model: BaseModel, *, status_code: int = 200) -> Response:
    return Response(
        model.__pydantic_serializer__.to_json(model, by_alias=True),
        status_code=status_code,
        media_type="application/json",
    )
