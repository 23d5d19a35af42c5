"""Webhook subscriptions (Debitura's ``WebhooksApi``): an organisation's creditor and partner
users subscribe for their own organisation; the signing secret is shown only in the answers
to create and to ``PATCH regenerateSecret=true`` (docs/api.md "Webhooks")."""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import delete
from temporalio.service import RPCError

import outbound
from activities.webhooks import encode_body, send, wake_deliveries
from api.deps import SessionDep, SettingsDep, require_role
from api.errors import FieldError, Problem, not_found
from api.idempotency import derived_id, idempotent, key_reused
from api.workflow_calls import call
from domain.enums import OrgKind
from domain.webhooks import (
    CreateWebhookRequest,
    TestResultDto,
    UpdateWebhookRequest,
    WebhookDto,
    event_names,
    ping_body,
    webhook_workflow_id,
)
from settings import Settings
from store.accounts import Principal
from store.db import insert_once, transaction
from store.models import WebhookDelivery, WebhookSubscription
from store.webhooks import new_secret, subscription_of, subscription_view, subscriptions_of

# Ids are matched as UUIDs (``:uuid``), so ``/webhooks/events`` is never taken for one: a
# method it does not have answers 405 rather than a subscription's 422.
router = APIRouter(prefix="/webhooks", tags=["webhooks"])
logger = logging.getLogger(__name__)

Subscriber = Annotated[
    Principal,
    Depends(
        require_role(
            OrgKind.CREDITOR,
            OrgKind.PARTNER,
            detail="Webhooks are subscribed by creditor and partner users, for their own "
            "organisation.",
        )
    ),
]
UNSAFE_URL = "webhook_url_unsafe"


def check_url(url: str, settings: Settings) -> None:
    """422 ``webhook_url_unsafe`` for a URL caseloop will not post to (https only, no
    loopback, private, link-local or metadata address; WEBHOOKS_ALLOW_LOCALHOST allows
    http://localhost)."""
    try:
        outbound.check_url(url, allow_localhost=settings.webhooks_allow_localhost)
    except outbound.UnsafeUrl as error:
        raise Problem(
            422,
            UNSAFE_URL,
            f"caseloop does not send webhooks to this URL: {error}.",
            errors=[FieldError("url", str(error))],
        ) from None


async def _owned(
    session: SessionDep, principal: Principal, webhook_id: uuid.UUID
) -> WebhookSubscription:
    row = await subscription_of(session, principal.org_id, webhook_id)
    if row is None:
        raise not_found("webhook subscription")
    return row


@router.post("", status_code=201, response_model=WebhookDto, responses={403: {}, 422: {}})
async def create_webhook(
    body: CreateWebhookRequest, request: Request, principal: Subscriber, settings: SettingsDep
) -> Response:
    """Subscribe a URL to events of your organisation's cases, tasks and chats. The answer is
    the only one that shows the signing ``secret`` (Standard Webhooks, ``whsec_…``)."""
    check_url(body.url, settings)

    async def execute() -> Response:
        now = dt.datetime.now(dt.UTC)
        row, _ = await insert_once(
            request.app.state.sessions,
            WebhookSubscription(
                id=derived_id(request, principal, "webhook"),
                org_id=principal.org_id,
                url=body.url,
                events=event_names(body.events),
                secret=new_secret(),
                is_active=True,
                is_test_mode=body.is_test_mode,
                disabled_reason=None,
                consecutive_failures=0,
                created_utc=now,
                updated_utc=now,
            ),
        )
        if (row.org_id, row.url, list(row.events)) != (
            principal.org_id,
            body.url,
            event_names(body.events),
        ):
            raise key_reused()
        view = subscription_view(row, with_secret=True)
        return JSONResponse(view.model_dump(mode="json"), status_code=201)

    return await idempotent(request, principal, body.model_dump(mode="json"), execute)


@router.get("", response_model=list[WebhookDto], responses={403: {}})
async def list_webhooks(principal: Subscriber, session: SessionDep) -> list[WebhookDto]:
    """Your organisation's subscriptions, oldest first (without their secrets)."""
    return [subscription_view(row) for row in await subscriptions_of(session, principal.org_id)]


@router.get("/{webhook_id:uuid}", response_model=WebhookDto, responses={403: {}, 404: {}})
async def get_webhook(
    webhook_id: uuid.UUID, principal: Subscriber, session: SessionDep
) -> WebhookDto:
    """One of your organisation's subscriptions (without its secret)."""
    return subscription_view(await _owned(session, principal, webhook_id))


@router.patch(
    "/{webhook_id:uuid}", response_model=WebhookDto, responses={403: {}, 404: {}, 422: {}}
)
async def update_webhook(
    webhook_id: uuid.UUID,
    body: UpdateWebhookRequest,
    request: Request,
    principal: Subscriber,
    settings: SettingsDep,
) -> Response:
    """Change what is given. ``isActive=true`` re-enables a disabled subscription (its failure
    count starts again, and what waited is delivered); ``isActive=false`` pauses it (events
    meanwhile are not recorded for it); ``regenerateSecret=true`` issues a new secret, shown
    in this answer only."""
    if body.url is not None:
        check_url(body.url, settings)

    async def execute() -> Response:
        async with transaction(request.app.state.sessions) as session:
            row = await _owned(session, principal, webhook_id)
            if body.url is not None:
                row.url = body.url
            if body.events is not None:
                row.events = event_names(body.events)
            if body.is_test_mode is not None:
                row.is_test_mode = body.is_test_mode
            if body.is_active is True:
                row.is_active, row.disabled_reason, row.consecutive_failures = True, None, 0
            elif body.is_active is False and row.is_active:
                row.is_active = False
                row.disabled_reason = "Disabled with PATCH isActive=false."
            if body.regenerate_secret:
                row.secret = new_secret()
            row.updated_utc = dt.datetime.now(dt.UTC)
            view = subscription_view(row, with_secret=bool(body.regenerate_secret))
        if view.is_active:
            # Re-enabled, or a new URL for what waits: deliver now (signal-with-start).
            await call(
                wake_deliveries(
                    request.app.state.temporal,
                    task_queue=settings.temporal_task_queue,
                    subscriptions=[view.id],
                ),
                changes=False,
            )
        return JSONResponse(view.model_dump(mode="json"))

    return await idempotent(request, principal, body.model_dump(mode="json"), execute)


@router.delete("/{webhook_id:uuid}", status_code=204, responses={403: {}, 404: {}})
async def delete_webhook(
    webhook_id: uuid.UUID, request: Request, principal: Subscriber
) -> Response:
    """Delete a subscription and its delivery log; nothing more is sent to it."""
    async with transaction(request.app.state.sessions) as session:
        row = await _owned(session, principal, webhook_id)
        await session.execute(
            delete(WebhookDelivery).where(WebhookDelivery.subscription_id == row.id)
        )
        await session.delete(row)
    # Its delivery workflow ends at its next pass, which this wakes it for (if it runs). The
    # deletion stands either way: a workflow not woken ends at its next timer or wake.
    try:
        await request.app.state.temporal.get_workflow_handle(
            webhook_workflow_id(webhook_id)
        ).signal("wake")
    except (RPCError, RuntimeError) as error:
        logger.info("webhook delivery workflow not woken after deletion: %s", error)
    return Response(status_code=204)


@router.post("/{webhook_id:uuid}/test", response_model=TestResultDto, responses={403: {}, 404: {}})
async def test_webhook(
    webhook_id: uuid.UUID, request: Request, principal: Subscriber, settings: SettingsDep
) -> Response:
    """Send a signed ``webhook.test`` event to the subscription's URL now and say how it went
    (not recorded in the delivery log; an inactive subscription is tested too)."""

    async def execute() -> Response:
        async with request.app.state.sessions() as session:
            row = await _owned(session, principal, webhook_id)
        payload = ping_body(row.id, dt.datetime.now(dt.UTC))
        started = time.monotonic()
        attempt = await send(
            row.url,
            row.secret,
            f"test-{uuid.uuid4()}",
            encode_body(payload),
            allow_localhost=settings.webhooks_allow_localhost,
        )
        result = TestResultDto(
            success=attempt.ok,
            http_status_code=attempt.status_code,
            duration_ms=round((time.monotonic() - started) * 1000),
            error_message=attempt.error,
            error_category=attempt.category,
            test_payload=payload,
        )
        return JSONResponse(result.model_dump(mode="json"))

    return await idempotent(request, principal, {"test": str(webhook_id)}, execute)
