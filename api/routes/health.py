"""The API's health checks, public (docs/decisions/0003): they name no data, only up or down.

- ``GET /api/health/live``, liveness: the process answers (no I/O; restart it when it does not).
- ``GET /api/health/ready``, readiness: Temporal and the database are reachable (take the
  process out of the load balancer while they are not; 503).
- ``GET /api/health``: the same as readiness, as it always was (load balancers use it).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import TemporalDep
from domain.base import ApiModel

logger = logging.getLogger(__name__)
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


HEALTH_SECONDS = 3  # how long Temporal has to answer, retries included


async def _temporal_ok(client: TemporalDep) -> bool:
    """Whether Temporal answers within HEALTH_SECONDS. A transient RPC error is retried, as the
    client retries every other call: a single one must not report Temporal down (a load
    balancer would take a healthy API out of service)."""
    try:
        return await asyncio.wait_for(
            client.service_client.check_health(
                retry=True, timeout=timedelta(seconds=HEALTH_SECONDS)
            ),
            timeout=HEALTH_SECONDS,
        )
    except Exception as error:
        logger.warning("health: Temporal did not answer (%s)", type(error).__name__)
        return False


class Liveness(ApiModel):
    status: Literal["ok"]


@router.get("/health/live", response_model=Liveness)
async def live() -> Liveness:
    """Liveness: the process answers. It checks nothing else (a database or Temporal outage is
    readiness's business: restarting the API would not mend it)."""
    return Liveness(status="ok")


@router.get("/health/ready", response_model=Health, responses={503: {"model": Health}})
async def ready(request: Request, client: TemporalDep) -> JSONResponse:
    """Readiness: Temporal and the database are reachable. Public: it names no data.

    Answers 200 when both are reachable, 503 otherwise.
    """
    return await health(request, client)


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
async def health(request: Request, client: TemporalDep) -> JSONResponse:
    """Reachability of Temporal and the database (readiness). Public: it names no data, only
    up or down.

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
