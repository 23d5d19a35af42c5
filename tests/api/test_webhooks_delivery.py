"""Webhooks end to end: what cases, tasks and chats do reaches each subscriber allowed to see it,
signed per Standard Webhooks, one case's events in sequence order, and nobody else."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.enums import OrgKind
from domain.webhooks import EVENT_TYPES
from store.models import TaskRow, WebhookDelivery
from tests.api.test_status import in_collection, move, pay
from tests.api.test_webhooks_api import settings, subscribe, worker
from tests.support import Actor, make_actor
from tests.webhooks import Receiver, receiver

__all__ = ["settings", "worker"]  # this module's fixtures: a receiver on 127.0.0.1


async def settled(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Until every delivery written so far has been delivered (none waits for an attempt)."""
    async with asyncio.timeout(20):
        while True:
            async with sessions() as session:
                waiting = await session.scalar(
                    select(func.count())
                    .select_from(WebhookDelivery)
                    .where(WebhookDelivery.next_attempt_at.is_not(None))
                )
            if not waiting:
                return
            await asyncio.sleep(0.05)


def bodies(hooks: Receiver, secret: str) -> list[dict[str, Any]]:
    return hooks.verified(secret)


async def test_a_status_change_reaches_the_subscriber_signed_with_seed_002s_payload_in_sequence_order(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    async with receiver() as hooks:
        sub = await subscribe(
            api, creditor, hooks.url, ["case.created", "case.status.changed", "case.closed"]
        )
        case = await in_collection(api, creditor, partner, ops)
        case_id = case["caseId"]
        moved = await move(
            api, partner, case_id, status="In Collection", subStatus="First reminder sent"
        )
        assert moved.status_code == 200, moved.text
        assert (await pay(api, partner, case_id, "11250.00")).status_code == 201
        resolved = await move(
            api, partner, case_id, status="Resolved", subStatus="Settlement reached"
        )
        assert resolved.status_code == 200, resolved.text
        await settled(sessions)
        got = bodies(hooks, sub["secret"])

    assert got[0]["event"] == "case.created" and got[0]["caseId"] == case_id
    changes = [b for b in got if b["event"] == "case.status.changed"]
    # One case's events arrive in sequence order, none twice.
    sequences = [b["sequence"] for b in got if b["event"] != "case.closed"]
    assert sequences == sorted(set(sequences)) and sequences[0] == 1
    reminder = next(b for b in changes if b["newSubStatus"] == "First reminder sent")
    assert {
        k: reminder[k]
        for k in ("event", "caseId", "caseNumber", "oldStatus", "newStatus", "newSubStatus")
    } == {
        "event": "case.status.changed",
        "caseId": case_id,
        "caseNumber": case["caseNumber"],
        "oldStatus": "In Collection",
        "newStatus": "In Collection",
        "newSubStatus": "First reminder sent",
    }
    assert reminder["timestamp"].endswith("Z")
    assert (reminder["oldLifecycle"], reminder["newLifecycle"]) == ("Active", "Active")
    assert changes[-1]["newStatus"] == "Resolved" and changes[-1]["newLifecycle"] == "Closed"
    [closed] = [b for b in got if b["event"] == "case.closed"]
    assert got[-1] == closed  # after the change that closed the case
    assert (closed["caseId"], closed["newStatus"], closed["closeCode"]) == (
        case_id,
        "Resolved",
        "Partially paid",
    )
    assert len({r.id for r in hooks.received}) == len(hooks.received)  # stable, unique ids
    # No personal data: no debtor, amount or message text in any body.
    assert not any("debtor" in str(b).lower() or "11250" in str(b) for b in got)


async def test_an_organisations_subscriber_never_receives_another_organisations_events(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    other_creditor = await make_actor(sessions, OrgKind.CREDITOR)
    other_partner = await make_actor(sessions, OrgKind.PARTNER)
    async with (
        receiver() as mine,
        receiver() as partners,
        receiver() as others,
        receiver() as other_partners,
    ):
        everything = list(EVENT_TYPES)
        own = await subscribe(api, creditor, mine.url, everything)
        theirs = await subscribe(api, partner, partners.url, everything)
        await subscribe(api, other_creditor, others.url, everything)
        await subscribe(api, other_partner, other_partners.url, everything)
        case = await in_collection(api, creditor, partner, ops)
        chat = await api.post(
            f"/api/cases/{case['caseId']}/chats",
            json={"message": "Any news from the debtor?"},
            headers=creditor.headers,
        )
        assert chat.status_code == 201, chat.text
        reply = await api.post(
            f"/api/cases/{case['caseId']}/chats",
            json={"message": "A payment plan is agreed."},
            headers=partner.headers,
        )
        assert reply.status_code == 201, reply.text  # a task for the creditor
        await settled(sessions)
        creditor_got = bodies(mine, own["secret"])
        partner_got = bodies(partners, theirs["secret"])

    # Another creditor and a partner not on the case receive nothing at all.
    assert others.received == [] and other_partners.received == []
    # Each task event reaches only the organisation whose task it is.
    owners: dict[str, uuid.UUID] = {}
    async with sessions() as session:
        for row in await session.scalars(select(TaskRow)):
            owners[row.id] = row.owner_org_id
    for got, org in ((creditor_got, creditor.org_id), (partner_got, partner.org_id)):
        tasks = [b for b in got if b["event"].startswith("task.")]
        assert tasks and all(owners[b["taskId"]] == org for b in tasks), (org, tasks)
    creditor_tasks = {b["taskId"] for b in creditor_got if b["event"].startswith("task.")}
    assert not creditor_tasks & {b["taskId"] for b in partner_got if "taskId" in b}
    # The partner sees the case's events from its assignment on, and both see the message.
    partner_changes = [b for b in partner_got if b["event"] == "case.status.changed"]
    assert partner_changes and partner_changes[-1]["newStatus"] == "In Collection"
    assert not [b for b in partner_got if b["event"] == "case.created"]
    for got in (creditor_got, partner_got):
        messages = [b for b in got if b["event"] == "chat.created"]
        assert [m["role"] for m in messages] == ["Creditor", "Partner"]
        assert all(m["caseId"] == case["caseId"] for m in messages)
        assert "Any news" not in str(messages) and "payment plan" not in str(messages)
