"""Webhook delivery: the activities of ``WebhookDeliveryWorkflow`` (one per subscription) and of
the retention schedule, and ``wake_deliveries``, which the projection and the API call to start
or wake a subscription's workflow (docs/decisions/0013-webhook-delivery.md).

One pass (``deliver_due``) sends what is due of one subscription: every case's due events in
``seq`` order (a case whose earlier event waits for a retry holds its later ones back; cases go
on side by side), each signed per Standard Webhooks (``webhook-id`` the delivery's stable id,
the same on every retry and answer; a replay also carries ``webhook-replay``). Each attempt is
recorded on its delivery and counted on the subscription (8 failures in a row, or a 410, disable
it). The pass answers when the next delivery falls due; the workflow sleeps on a durable timer
until then or a wake signal. What is due is judged at the workflow's ``now``, so a
time-skipping test walks the retry schedule; the signature's timestamp is the real clock's,
which the receiver checks.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks.webhooks import Webhook
from temporalio import activity
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy

import outbound
from domain.webhooks import (
    ATTEMPT_TIMEOUT_SECONDS,
    DeliveryPass,
    DeliveryPassResult,
    DeliveryWorkflowInput,
    PruneRequest,
    disabled_reason,
    retry_delay,
    webhook_workflow_id,
)
from observability.metrics import WEBHOOK_ATTEMPTS
from store.db import statements
from store.webhooks import (
    SUBSCRIPTIONS,
    disable,
    due_deliveries,
    next_due,
    prune,
    record_attempt,
)

# Cases sent to at once in one pass (each case's own events one after another).
DELIVERY_CONCURRENCY = 8
REPLAY_HEADER = "webhook-replay"
USER_AGENT = "caseloop-webhooks/1"


def encode_body(payload: Mapping[str, Any]) -> bytes:
    """The bytes sent (and signed) for a delivery's body."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def signed_headers(
    secret: str, message_id: str, body: bytes, now: dt.datetime, *, replay_of: str | None = None
) -> dict[str, str]:
    """Standard Webhooks headers for ``body`` (``webhook-id``, ``-timestamp``, ``-signature``)."""
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, now, body.decode()),
    }
    if replay_of:
        headers[REPLAY_HEADER] = replay_of
    return headers


@dataclass(frozen=True)
class Attempt:
    """How one POST went: the answer's status (None: no answer), what went wrong (None: a
    2xx; the cause, never the body) and its kind, in Debitura's ``errorCategory`` words."""

    status_code: int | None
    error: str | None
    category: str | None

    @property
    def ok(self) -> bool:
        return self.error is None


async def send(
    url: str,
    secret: str,
    message_id: str,
    body: bytes,
    *,
    allow_localhost: bool,
    replay_of: str | None = None,
) -> Attempt:
    """One signed POST of ``body`` to ``url`` (``outbound.post``: checked addresses, no
    redirects, ATTEMPT_TIMEOUT_SECONDS)."""
    headers = signed_headers(secret, message_id, body, dt.datetime.now(dt.UTC), replay_of=replay_of)
    try:
        response = await outbound.post(
            url, body, headers, timeout=ATTEMPT_TIMEOUT_SECONDS, allow_localhost=allow_localhost
        )
    except outbound.UnsafeUrl as error:
        return Attempt(None, f"unsafe URL: {error}"[:1000], "UnsafeUrl")
    except outbound.OutboundError as error:
        reason = str(error)[:1000] or type(error).__name__
        return Attempt(None, reason, "TimeoutError" if "no answer" in reason else "NetworkError")
    code = response.status_code
    if 200 <= code < 300:
        return Attempt(code, None, None)
    excerpt = response.body_excerpt.strip()
    return Attempt(code, (f"HTTP {code}" + (f": {excerpt}" if excerpt else ""))[:1000], "HttpError")


async def wake_deliveries(
    client: Client, *, task_queue: str, subscriptions: Iterable[UUID]
) -> None:
    """Start each subscription's delivery workflow, or wake it if it runs (signal-with-start)."""
    await asyncio.gather(
        *(
            client.start_workflow(
                "WebhookDeliveryWorkflow",
                DeliveryWorkflowInput(subscription_id=subscription),
                id=webhook_workflow_id(subscription),
                task_queue=task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                start_signal="wake",
                static_summary=f"Webhook deliveries of subscription {subscription}",
            )
            for subscription in sorted(set(subscriptions))
        )
    )


class DeliveryWaker:
    """What the projection calls after its transaction committed deliveries."""

    def __init__(self, client: Client, task_queue: str) -> None:
        self._client = client
        self._task_queue = task_queue

    async def __call__(self, subscriptions: set[UUID]) -> None:
        await wake_deliveries(
            self._client, task_queue=self._task_queue, subscriptions=subscriptions
        )


class _Pass:
    """The state of one pass: the subscription's address and secret, and whether it stopped."""

    def __init__(self, subscription: Any, now: dt.datetime) -> None:
        self.subscription = subscription
        self.now = now
        self.stopped = False
        self.attempted = 0
        self.delivered = 0


class WebhookActivities:
    """The delivery and retention activities; one instance per worker."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        allow_localhost: bool = False,
        retention: dt.timedelta = dt.timedelta(days=30),
    ) -> None:
        self._sessions = sessions
        self._allow_localhost = allow_localhost
        self._retention = retention

    @activity.defn
    async def deliver_due(self, request: DeliveryPass) -> DeliveryPassResult:
        """Send the subscription's due deliveries (module doc); when the next falls due."""
        async with statements(self._sessions) as connection:
            subscription = (
                await connection.execute(
                    select(SUBSCRIPTIONS).where(SUBSCRIPTIONS.c.id == request.subscription_id)
                )
            ).first()
            if subscription is None or not subscription.is_active:
                return DeliveryPassResult(stop=True)
            due = await due_deliveries(
                connection, request.subscription_id, request.now, request.batch
            )
        state = _Pass(subscription, request.now)
        chains: dict[object, list[Any]] = {}
        for row in due:
            # A delivery of no case is a chain of its own.
            chains.setdefault(row.case_id if row.case_id is not None else row.id, []).append(row)
        limit = asyncio.Semaphore(DELIVERY_CONCURRENCY)

        async def run(chain: list[Any]) -> None:
            async with limit:
                for row in chain:
                    if state.stopped or not await self._attempt(state, row):
                        return  # the case's later events wait for this one

        await asyncio.gather(*(run(chain) for chain in chains.values()))
        if state.stopped:
            return DeliveryPassResult(
                attempted=state.attempted, delivered=state.delivered, stop=True
            )
        async with statements(self._sessions) as connection:
            upcoming = await next_due(connection, request.subscription_id)
        return DeliveryPassResult(
            attempted=state.attempted, delivered=state.delivered, next_attempt_at=upcoming
        )

    async def _attempt(self, state: _Pass, row: Any) -> bool:
        """Send one delivery and record the attempt; whether it was delivered."""
        subscription = state.subscription
        attempt = await send(
            subscription.url,
            subscription.secret,
            row.id,
            encode_body(row.payload),
            allow_localhost=self._allow_localhost,
            replay_of=row.replay_of or None,
        )
        attempts = row.attempt_count + 1
        now = state.now
        ok, code, error = attempt.ok, attempt.status_code, attempt.error
        delay = None if ok else retry_delay(attempts, random.uniform(-1.0, 1.0))
        async with statements(self._sessions) as connection:
            failures = await record_attempt(
                connection,
                row.id,
                subscription_id=subscription.id,
                attempts=attempts,
                status_code=code,
                error=error,
                delivered_at=now if ok else None,
                next_attempt_at=None if ok or delay is None else now + delay,
                failed_at=now if not ok and delay is None else None,
            )
            reason = None if ok else disabled_reason(code, failures)
            if reason is not None:
                await disable(connection, subscription.id, reason, dt.datetime.now(dt.UTC))
                state.stopped = True
        WEBHOOK_ATTEMPTS.inc("delivered" if ok else "failed")
        state.attempted += 1
        state.delivered += ok
        activity.heartbeat()
        return ok

    @activity.defn
    async def prune_deliveries(self, request: PruneRequest) -> int:
        """Delete up to ``request.batch`` deliveries delivered or given up longer than the
        retention period ago (``WEBHOOKS_RETENTION_DAYS``); how many."""
        async with statements(self._sessions) as connection:
            return await prune(connection, request.now - self._retention, request.batch)
