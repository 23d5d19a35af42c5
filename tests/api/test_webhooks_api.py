"""``/api/webhooks`` and ``/api/webhooks/events``: subscriptions in Debitura's shape, the secret
shown only when issued, URLs checked, the delivery log of one's own organisation, PATCH
re-enabling and replays; and Debitura's SDK driving them."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from debitura_debt_collection import ApiClient, Configuration, WebhookEventsApi, WebhooksApi
from debitura_debt_collection.models import (
    DebituraDomainModelWebhooksDtosCreateWebhookRequest as CreateWebhookRequest,
)
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks.webhooks import Webhook
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.webhooks import REPLAY_HEADER
from settings import Settings
from store.db import transaction
from store.models import WebhookDelivery, WebhookSubscription
from tests.support import Actor
from tests.webhooks import add_delivery, deliveries, local_webhooks, receiver, subscription
from worker import build_worker

PAST = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The test receiver listens on 127.0.0.1 (WEBHOOKS_ALLOW_LOCALHOST)."""
    return settings.model_copy(update={"webhooks_allow_localhost": True})


@pytest.fixture
async def worker(
    dev_env: WorkflowEnvironment, task_queue: str, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Worker]:
    async with build_worker(
        dev_env.client, task_queue=task_queue, sessions=sessions, webhooks=local_webhooks(sessions)
    ) as running:
        yield running


async def subscribe(
    api: httpx.AsyncClient, actor: Actor, url: str, events: list[str] | None = None
) -> dict[str, Any]:
    created = await api.post(
        "/api/webhooks",
        json={"url": url, "events": events or ["case.status.changed"]},
        headers=actor.headers,
    )
    assert created.status_code == 201, created.text
    return dict(created.json())


async def test_a_subscription_is_created_listed_read_updated_and_deleted_showing_its_secret_only_when_issued(
    api: httpx.AsyncClient, creditor: Actor
) -> None:
    created = await subscribe(api, creditor, "https://hooks.example.com/caseloop")
    assert set(created) == {
        "id",
        "url",
        "events",
        "isActive",
        "createdUtc",
        "updatedUtc",
        "disabledReason",
        "secret",
        "isTestMode",
    }
    assert created["secret"].startswith("whsec_") and created["isActive"] is True
    assert (created["events"], created["disabledReason"], created["isTestMode"]) == (
        ["case.status.changed"],
        None,
        False,
    )
    hook = f"/api/webhooks/{created['id']}"
    listed = (await api.get("/api/webhooks", headers=creditor.headers)).json()
    assert [w["id"] for w in listed] == [created["id"]] and listed[0]["secret"] is None
    assert (await api.get(hook, headers=creditor.headers)).json()["secret"] is None

    patched = await api.patch(
        hook, json={"events": ["case.created", "task.created"]}, headers=creditor.headers
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["events"] == ["case.created", "task.created"]
    assert patched.json()["secret"] is None
    regenerated = await api.patch(hook, json={"regenerateSecret": True}, headers=creditor.headers)
    assert regenerated.json()["secret"].startswith("whsec_")
    assert regenerated.json()["secret"] != created["secret"]
    paused = await api.patch(hook, json={"isActive": False}, headers=creditor.headers)
    assert (paused.json()["isActive"], paused.json()["disabledReason"] is not None) == (
        False,
        True,
    )

    assert (await api.delete(hook, headers=creditor.headers)).status_code == 204
    assert (await api.get(hook, headers=creditor.headers)).status_code == 404
    assert (await api.get("/api/webhooks", headers=creditor.headers)).json() == []


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/x",  # not https
        "https://10.0.0.7/x",  # private
        "https://169.254.169.254/latest/meta-data",  # cloud metadata
        "https://user:pw@hooks.example.com/x",  # credentials in the URL
        "ftp://hooks.example.com/x",
    ],
)
async def test_an_unsafe_url_is_refused_with_webhook_url_unsafe_and_nothing_is_created(
    api: httpx.AsyncClient, creditor: Actor, url: str
) -> None:
    refused = await api.post(
        "/api/webhooks", json={"url": url, "events": ["case.created"]}, headers=creditor.headers
    )
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "webhook_url_unsafe"
    assert refused.json()["errors"][0]["field"] == "url"
    assert (await api.get("/api/webhooks", headers=creditor.headers)).json() == []
    created = await subscribe(api, creditor, "https://hooks.example.com/ok")
    patched = await api.patch(
        f"/api/webhooks/{created['id']}", json={"url": url}, headers=creditor.headers
    )
    assert patched.status_code == 422 and patched.json()["code"] == "webhook_url_unsafe"


async def test_an_unknown_event_type_or_no_event_is_refused_with_422(
    api: httpx.AsyncClient, creditor: Actor
) -> None:
    for events in (["case.updated"], []):
        refused = await api.post(
            "/api/webhooks",
            json={"url": "https://hooks.example.com/x", "events": events},
            headers=creditor.headers,
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == "events" or refused.json()["errors"][0][
            "field"
        ].startswith("events")


async def test_ops_may_not_subscribe_and_nobody_sees_another_organisations_subscriptions(
    api: httpx.AsyncClient, creditor: Actor, partner: Actor, ops: Actor
) -> None:
    body = {"url": "https://hooks.example.com/x", "events": ["case.created"]}
    assert (await api.post("/api/webhooks", json=body, headers=ops.headers)).status_code == 403
    assert (await api.get("/api/webhooks", headers=ops.headers)).status_code == 403
    created = await subscribe(api, creditor, "https://hooks.example.com/x")
    hook = f"/api/webhooks/{created['id']}"
    assert (await api.get(hook, headers=partner.headers)).status_code == 404
    assert (await api.patch(hook, json={}, headers=partner.headers)).status_code == 404
    assert (await api.delete(hook, headers=partner.headers)).status_code == 404
    assert (await api.get("/api/webhooks", headers=partner.headers)).json() == []
    assert (await subscribe(api, partner, "https://hooks.example.com/p"))["id"] != created["id"]


async def test_the_event_log_refuses_an_unknown_query_parameter(
    api: httpx.AsyncClient, creditor: Actor
) -> None:
    refused = await api.get("/api/webhooks/events?caseid=x", headers=creditor.headers)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "caseid"


async def test_patch_is_active_true_re_enables_a_disabled_subscription_and_delivers_what_waited(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    async with receiver() as hooks:
        created = await subscribe(api, creditor, hooks.url)
        sub_id = uuid.UUID(created["id"])
        async with transaction(sessions) as session:
            await session.execute(
                update(WebhookSubscription)
                .where(WebhookSubscription.id == sub_id)
                .values(is_active=False, disabled_reason="8 failures", consecutive_failures=8)
            )
        waiting = await add_delivery(
            sessions, await subscription(sessions, sub_id), case_id=None, n=1, due=PAST
        )
        patched = await api.patch(
            f"/api/webhooks/{sub_id}", json={"isActive": True}, headers=creditor.headers
        )
        assert patched.status_code == 200, patched.text
        assert (patched.json()["isActive"], patched.json()["disabledReason"]) == (True, None)
        [got] = await hooks.wait_for(1)
    assert got.id == waiting
    Webhook(created["secret"]).verify(got.body, got.headers)
    assert (await subscription(sessions, sub_id)).consecutive_failures == 0


async def test_a_replay_is_a_new_log_entry_that_arrives_with_the_replay_header(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    async with receiver() as hooks:
        created = await subscribe(api, creditor, hooks.url)
        sub = await subscription(sessions, uuid.UUID(created["id"]))
        case_id = uuid.uuid4()
        original = await add_delivery(sessions, sub, case_id=case_id, n=5, due=PAST)
        async with transaction(sessions) as session:
            await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == original)
                .values(next_attempt_at=None, delivered_at=PAST, attempt_count=1)
            )
        key = {"Idempotency-Key": f"replay-{uuid.uuid4()}"}
        replayed = await api.post(
            f"/api/webhooks/events/{original}/replay", headers={**creditor.headers, **key}
        )
        assert replayed.status_code == 200, replayed.text
        again = await api.post(
            f"/api/webhooks/events/{original}/replay", headers={**creditor.headers, **key}
        )
        assert again.json() == replayed.json()  # the same key queues one replay
        answer = replayed.json()
        assert (answer["eventId"], answer["subscriptionId"], answer["eventType"]) == (
            original,
            created["id"],
            "case.status.changed",
        )
        [got] = await hooks.wait_for(1)
        assert got.headers[REPLAY_HEADER] == original and got.id == answer["id"]
        assert Webhook(created["secret"]).verify(got.body, got.headers) == {
            "event": "case.status.changed",
            "n": 5,
        }
        for _ in range(100):
            log = (
                await api.get(f"/api/webhooks/events?caseId={case_id}", headers=creditor.headers)
            ).json()
            if log[0]["deliveredAt"]:
                break
            await asyncio.sleep(0.05)
    assert [(e["id"], e["replayOf"]) for e in log] == [(answer["id"], original), (original, None)]
    assert json.loads(log[0]["payload"]) == {"event": "case.status.changed", "n": 5}
    assert log[0]["attemptCount"] == 1 and log[0]["lastResponseCode"] == 200
    assert len(await deliveries(sessions, sub.id)) == 2
    missing = await api.post(
        f"/api/webhooks/events/{uuid.uuid4()}/replay", headers=creditor.headers
    )
    assert missing.status_code == 404


async def test_a_test_event_is_sent_signed_and_its_result_reported(
    api: httpx.AsyncClient, creditor: Actor
) -> None:
    async with receiver() as hooks:
        created = await subscribe(api, creditor, hooks.url)
        tested = await api.post(f"/api/webhooks/{created['id']}/test", headers=creditor.headers)
        assert tested.status_code == 200, tested.text
        result = tested.json()
        assert (result["success"], result["httpStatusCode"], result["errorMessage"]) == (
            True,
            200,
            None,
        )
        [got] = hooks.received
        assert Webhook(created["secret"]).verify(got.body, got.headers) == result["testPayload"]
        assert result["testPayload"]["event"] == "webhook.test"
        hooks.answer = lambda _n, _id: 503
        failed = (
            await api.post(f"/api/webhooks/{created['id']}/test", headers=creditor.headers)
        ).json()
    assert (failed["success"], failed["httpStatusCode"], failed["errorCategory"]) == (
        False,
        503,
        "HttpError",
    )


async def _in_thread(call: Any, *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(call, *args, **kwargs)


async def test_debituras_sdk_creates_lists_reads_and_deletes_webhooks_and_reads_the_event_log(
    served: str, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    client = ApiClient(Configuration(host=f"{served}/api", api_key={"ApiKey": creditor.key}))
    webhooks, events = WebhooksApi(client), WebhookEventsApi(client)
    created = await _in_thread(
        webhooks.webhooks_post,
        CreateWebhookRequest(url="https://hooks.example.com/sdk", events=["case.created"]),
    )
    assert created.id and created.secret and created.secret.startswith("whsec_")
    assert (created.url, created.events, created.is_active) == (
        "https://hooks.example.com/sdk",
        ["case.created"],
        True,
    )
    listed = await _in_thread(webhooks.webhooks_get)
    assert [w.id for w in listed] == [created.id] and listed[0].secret is None
    got = await _in_thread(webhooks.webhooks_id_get, created.id)
    assert got.url == created.url and got.created_utc is not None

    case_id = uuid.uuid4()
    logged = await add_delivery(
        sessions,
        await subscription(sessions, uuid.UUID(created.id)),
        case_id=case_id,
        n=1,
        due=PAST,
    )
    log = await _in_thread(events.webhooks_events_get, case_id=str(case_id), since=PAST)
    assert [(e.id, e.subscription_id, e.case_id, e.event_type) for e in log] == [
        (logged, created.id, str(case_id), "case.status.changed")
    ]
    assert json.loads(log[0].payload or "") == {"event": "case.status.changed", "n": 1}
    assert log[0].attempt_count == 0 and log[0].created_at is not None

    await _in_thread(webhooks.webhooks_id_delete, created.id)
    assert await _in_thread(webhooks.webhooks_get) == []
