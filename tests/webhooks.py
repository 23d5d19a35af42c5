"""A webhook receiver on 127.0.0.1 for the tests, and helpers to set up subscriptions and
deliveries directly in the read model."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from activities.webhooks import WebhookActivities
from domain.webhooks import EVENT_TYPES
from store.db import transaction
from store.models import WebhookDelivery, WebhookSubscription
from store.webhooks import new_secret
from tests.support import free_socket, serve


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Receiver:
    """Records every POST; answers ``answer(request number, webhook-id)`` (default 200)."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    answer: Callable[[int, str], int] = lambda _n, _id: 200
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def _hook(self, request: Request) -> Response:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        status = self.answer(len(self.received), headers.get("webhook-id", ""))
        self.received.append(Received(headers, body, status))
        self.arrived.set()
        return Response("gone" if status == 410 else "ok", status_code=status)

    def verified(self, secret: str) -> list[dict[str, Any]]:
        """Every body received, each checked against its Standard Webhooks signature."""
        webhook = Webhook(secret)
        return [webhook.verify(r.body, r.headers) for r in self.received]

    async def wait_for(self, count: int) -> list[Received]:
        """Until ``count`` requests have arrived (TimeoutError after 20 s)."""
        async with asyncio.timeout(20):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.received


@asynccontextmanager
async def receiver() -> AsyncIterator[Receiver]:
    hooks = Receiver()
    app = Starlette(routes=[Route("/hook", hooks._hook, methods=["POST"])])
    async with serve(app, free_socket()) as base:
        hooks.url = f"{base}/hook"
        yield hooks


def local_webhooks(sessions: async_sessionmaker[AsyncSession]) -> WebhookActivities:
    """Delivery activities that may post to 127.0.0.1 (WEBHOOKS_ALLOW_LOCALHOST)."""
    return WebhookActivities(sessions, allow_localhost=True)


async def add_subscription(
    sessions: async_sessionmaker[AsyncSession],
    org_id: uuid.UUID,
    url: str,
    *,
    events: tuple[str, ...] = EVENT_TYPES,
) -> WebhookSubscription:
    now = dt.datetime.now(dt.UTC)
    row = WebhookSubscription(
        id=uuid.uuid4(),
        org_id=org_id,
        url=url,
        events=list(events),
        secret=new_secret(),
        is_active=True,
        is_test_mode=False,
        disabled_reason=None,
        consecutive_failures=0,
        created_utc=now,
        updated_utc=now,
    )
    async with transaction(sessions) as session:
        session.add(row)
    return row


async def add_delivery(
    sessions: async_sessionmaker[AsyncSession],
    subscription: WebhookSubscription,
    *,
    case_id: uuid.UUID | None,
    n: int,
    due: dt.datetime,
) -> str:
    """A delivery of a made-up event ``n`` (body ``{"n": n}``), due at ``due``."""
    delivery = str(uuid.uuid4())
    async with transaction(sessions) as session:
        session.add(
            WebhookDelivery(
                id=delivery,
                subscription_id=subscription.id,
                event_id=f"event-{n}",
                replay_of="",
                case_id=case_id,
                event_type="case.status.changed",
                payload={"event": "case.status.changed", "n": n},
                created_at=due,
                next_attempt_at=due,
                delivered_at=None,
                failed_at=None,
                attempt_count=0,
                last_response_code=None,
                last_error=None,
            )
        )
    return delivery


async def deliveries(
    sessions: async_sessionmaker[AsyncSession], subscription_id: uuid.UUID
) -> list[WebhookDelivery]:
    async with sessions() as session:
        rows = await session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.subscription_id == subscription_id)
            .order_by(WebhookDelivery.seq)
        )
        return list(rows)


async def subscription(
    sessions: async_sessionmaker[AsyncSession], subscription_id: uuid.UUID
) -> WebhookSubscription:
    async with sessions() as session:
        row = await session.get(WebhookSubscription, subscription_id)
    assert row is not None
    return row
