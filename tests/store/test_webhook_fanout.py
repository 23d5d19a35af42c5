"""``store.webhooks.fan_out``: in the projection's transaction, one delivery per event and active
subscription allowed to see it and subscribed to its type; nothing twice; and what it costs."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.enums import OrgKind
from domain.tasks import OutboxEvent
from store.db import statements, transaction
from store.models import Relationship
from store.webhooks import fan_out
from tests.store.test_projection_statements import statements as sent_statements
from tests.support import Actor, add_case, make_actor
from tests.webhooks import add_subscription, deliveries

NOW = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)


def event(
    n: int, type: str, *, org: uuid.UUID, case: uuid.UUID | None, **payload: object
) -> OutboxEvent:
    return OutboxEvent(
        id=f"wf#event#{n}", type=type, org_id=org, case_id=case, occurred_at=NOW, payload=payload
    )


async def test_each_event_reaches_only_the_organisations_allowed_to_see_it_and_only_once(
    sessions: async_sessionmaker[AsyncSession], creditor: Actor, partner: Actor
) -> None:
    outsider = await make_actor(sessions, OrgKind.PARTNER)
    case_id = await add_case(sessions, creditor, partner=partner)
    relationship = uuid.uuid4()
    async with transaction(sessions) as session:
        session.add(
            Relationship(
                id=relationship,
                version=1,
                creditor_id=creditor.org_id,
                partner_id=partner.org_id,
                linked_at=NOW,
            )
        )
    url = "https://hooks.example.com/x"
    subs = {
        "creditor": await add_subscription(sessions, creditor.org_id, url),
        "partner": await add_subscription(sessions, partner.org_id, url),
        "outsider": await add_subscription(sessions, outsider.org_id, url),
        "creditor, tasks only": await add_subscription(
            sessions, creditor.org_id, url, events=("task.created",)
        ),
    }
    events = [
        event(1, "case.status.changed", org=creditor.org_id, case=case_id, newStatus="Closed"),
        event(2, "task.created", org=creditor.org_id, case=case_id, taskId="t-creditor"),
        event(3, "task.created", org=partner.org_id, case=case_id, taskId="t-partner"),
        # The partner writes in the pair's general chat: the creditor receives it.
        event(
            4,
            "chat.created",
            org=creditor.org_id,
            case=None,
            partnerId=str(partner.org_id),
            relationshipId=str(relationship),
            threadType="General",
        ),
        # The creditor writes there: the partner receives it, and the creditor sees its thread.
        event(
            5,
            "chat.created",
            org=partner.org_id,
            case=None,
            partnerId=str(partner.org_id),
            relationshipId=str(relationship),
            threadType="General",
        ),
        event(6, "task.reminder", org=creditor.org_id, case=case_id),  # no subscriber's type
    ]
    for _ in range(2):  # a projection that runs again writes nothing twice
        async with statements(sessions) as connection:
            woken = await fan_out(connection, events)
    assert woken == {subs["creditor"].id, subs["partner"].id, subs["creditor, tasks only"].id}

    async def got(name: str) -> list[tuple[str, str]]:
        return [(d.event_type, d.event_id) for d in await deliveries(sessions, subs[name].id)]

    assert await got("creditor") == [
        ("case.status.changed", "wf#event#1"),
        ("case.closed", "wf#event#1/closed"),
        ("task.created", "wf#event#2"),
        ("chat.created", "wf#event#4"),
        ("chat.created", "wf#event#5"),
    ]
    assert await got("partner") == [
        ("case.status.changed", "wf#event#1"),
        ("case.closed", "wf#event#1/closed"),
        ("task.created", "wf#event#3"),
        ("chat.created", "wf#event#4"),
        ("chat.created", "wf#event#5"),
    ]
    assert await got("outsider") == []
    assert await got("creditor, tasks only") == [("task.created", "wf#event#2")]
    [closed] = [
        d for d in await deliveries(sessions, subs["partner"].id) if d.event_type == "case.closed"
    ]
    assert closed.payload["event"] == "case.closed" and closed.payload["caseId"] == str(case_id)
    assert closed.next_attempt_at == NOW and closed.attempt_count == 0


async def test_an_inactive_subscription_gets_nothing_and_without_one_events_cost_one_select(
    sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    case_id = await add_case(sessions, creditor)
    events = [event(1, "case.status.changed", org=creditor.org_id, case=case_id)]
    with sent_statements(sessions) as sent:
        async with statements(sessions) as connection:
            assert await fan_out(connection, []) == set()
    assert [s for s in sent if not s.startswith(("BEGIN", "COMMIT"))] == []  # nothing at all
    with sent_statements(sessions) as sent:
        async with statements(sessions) as connection:
            assert await fan_out(connection, events) == set()
    assert [s for s in sent if not s.startswith(("BEGIN", "COMMIT"))] == [
        "SELECT WEBHOOK_SUBSCRIPTIONS.ID, WEBHOOK_SUBSCRIPTIONS.ORG_ID,"
    ]
    paused = await add_subscription(sessions, creditor.org_id, "https://hooks.example.com/x")
    async with transaction(sessions) as session:
        row = await session.merge(paused)
        row.is_active = False
    async with statements(sessions) as connection:
        assert await fan_out(connection, events) == set()
    assert await deliveries(sessions, paused.id) == []
