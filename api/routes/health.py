"""``GET /api/health``: is the API able to reach Temporal and the database?"""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import TemporalDep
from domain.base import ApiModel

router = APIRouter(tags=["health"])

Status = Literal["ok", "unavailable"]


class Health(ApiModel):
    status: Status
    temporal: Status
    database: Status


async def _database_ok(request: Request) -> bool:
    try:
        async with request.app.state.sessions() as session:
            await session.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


async def _temporal_ok(client: TemporalDep) -> bool:
    try:
        return await asyncio.wait_for(client.service_client.check_health(), timeout=3)
    except Exception:
        return False


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
async def health(request: Request, client: TemporalDep) -> JSONResponse:
    """Reachability of Temporal and the database. Public: it names no data, only up or down.

    Answers 200 when both are reachable, 503 otherwise.
    """
    database, temporal = await asyncio.gather(_database_ok(request), _temporal_ok(client))
    body = Health(
        status="ok" if database and temporal else "unavailable",
        temporal="ok" if temporal else "unavailable",
        database="ok" if database else "unavailable",
    )
    return JSONResponse(
        body.model_dump(mode="json"), status_code=200 if body.status == "ok" else 503
    )
