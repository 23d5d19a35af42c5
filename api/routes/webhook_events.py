"""The webhook delivery log and replays (Debitura's ``WebhookEventsApi``): an organisation sees
its own subscriptions' deliveries only."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from activities.webhooks import wake_deliveries
from api.deps import SessionDep, SettingsDep
from api.errors import not_found
from api.idempotency import derived_id, idempotent, key_reused
from api.query import QueryTimestamp
from api.routes.webhooks import Subscriber
from api.workflow_calls import call
from domain.webhooks import ReplayEventResultDto, WebhookEventDto
from store.webhooks import add_replay, deliveries_of, delivery_of, event_view

router = APIRouter(prefix="/webhooks/events", tags=["webhooks"])

# The most entries one answer lists (the newest); narrow with caseId and since.
LOG_LIMIT = 1000


@router.get("", response_model=list[WebhookEventDto], responses={403: {}, 422: {}})
async def list_webhook_events(
    principal: Subscriber,
    session: SessionDep,
    case_id: Annotated[uuid.UUID | None, Query(alias="caseId")] = None,
    since: QueryTimestamp | None = None,
) -> list[WebhookEventDto]:
    """Your subscriptions' deliveries, newest first (at most 1,000): of one case with
    ``caseId``, recorded at or after ``since``. ``payload`` is the JSON body sent."""
    rows = await deliveries_of(
        session, principal.org_id, case_id=case_id, since=since, limit=LOG_LIMIT
    )
    return [event_view(row) for row in rows]


@router.post(
    "/{event_id}/replay", response_model=ReplayEventResultDto, responses={403: {}, 404: {}}
)
async def replay_webhook_event(
    event_id: str, request: Request, principal: Subscriber, settings: SettingsDep
) -> Response:
    """Deliver a logged event again, as a new log entry (``replayOf`` names the original) with
    its own ``webhook-id`` and the header ``webhook-replay: <original id>``. With an
    Idempotency-Key, a retried request queues one replay."""

    async def execute() -> Response:
        async with request.app.state.sessions() as session:
            original = await delivery_of(session, principal.org_id, event_id)
        if original is None:
            raise not_found("webhook event")
        replay = await add_replay(
            request.app.state.sessions,
            original,
            derived_id(request, principal, "webhook-replay"),
            dt.datetime.now(dt.UTC),
        )
        if replay.replay_of != original.id:
            raise key_reused()
        await call(
            wake_deliveries(
                request.app.state.temporal,
                task_queue=settings.temporal_task_queue,
                subscriptions=[original.subscription_id],
            ),
            changes=False,
        )
        result = ReplayEventResultDto(
            event_id=original.id,
            subscription_id=original.subscription_id,
            event_type=original.event_type,
            id=replay.id,
        )
        return JSONResponse(result.model_dump(mode="json"))

    return await idempotent(request, principal, {"replay": event_id}, execute)
