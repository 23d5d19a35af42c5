"""The projection's view of the active webhook subscriptions (``store.webhooks.fan_out``): kept
in memory while the database's subscriptions version stays the same, read with the statement
that writes the events, so a projection nobody subscribes to sends no statement for webhooks;
and never stale: a subscription created, re-enabled or changed by another process a moment
before gets the very next projection's events."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.projection import ProjectionActivities
from domain.cases import CaseProjection
from domain.enums import OrgKind
from domain.ids import case_workflow_id
from domain.tasks import OutboxEvent, task_id
from store.db import create_engine, session_factory, transaction
from store.models import WebhookSubscription, WebhookSubscriptionsVersion
from tests.store.test_projection_statements import statements as sent_statements
from tests.support import Actor, make_actor, new_case_record
from tests.webhooks import add_subscription, deliveries

T1 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
URL = "https://hooks.example.com/x"
Project = Callable[[], Awaitable[str]]


@pytest.fixture
async def elsewhere(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions of another process on the same database: an engine (and pool) of its own."""
    engine = create_engine(database_url)
    yield session_factory(engine)
    await engine.dispose()


async def status_changes(sessions: async_sessionmaker[AsyncSession], creditor: Actor) -> Project:
    """A case of ``creditor`` in the read model, and a call that projects its next status
    change (a ``case.status.changed`` event) and answers the event's id."""
    record = new_case_record(creditor)
    record.created_at = record.last_status_change = T1
    project = ProjectionActivities(sessions).project_case
    env = ActivityEnvironment()
    await env.run(project, CaseProjection(version=1, modified_at=T1, case=record))
    versions = itertools.count(2)

    async def change() -> str:
        version = next(versions)
        event = OutboxEvent(
            id=task_id(case_workflow_id(record.case_id), f"event#{version}"),
            type="case.status.changed",
            org_id=creditor.org_id,
            case_id=record.case_id,
            occurred_at=T1,
            payload={"oldStatus": "Created", "newStatus": "Validated", "sequence": version},
        )
        await env.run(
            project,
            CaseProjection(version=version, modified_at=T1, case_id=record.case_id, events=[event]),
        )
        return event.id

    return change


def webhook_statements(sent: list[str]) -> list[str]:
    return [s for s in sent if "WEBHOOK" in s]


async def delivered_events(
    sessions: async_sessionmaker[AsyncSession], subscription: WebhookSubscription
) -> list[str]:
    return [d.event_id for d in await deliveries(sessions, subscription.id)]


async def test_without_a_subscriber_a_projection_sends_no_statement_for_webhooks(
    sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    """Only the first projection of a process loads the (empty) view; later ones read the
    version with their events' upsert and send nothing more."""
    change = await status_changes(sessions, creditor)
    with sent_statements(sessions) as first:
        await change()
    with sent_statements(sessions) as second:
        await change()
    assert webhook_statements(first) == [
        "SELECT WEBHOOK_SUBSCRIPTIONS.ID, WEBHOOK_SUBSCRIPTIONS.ORG_ID,"
    ]
    assert webhook_statements(second) == []
    assert [s for s in second if s.startswith(("SELECT", "INSERT", "UPDATE"))] == [
        "UPDATE CASES SET",
        "INSERT INTO OUTBOX_EVENTS",
    ]


async def test_subscriptions_of_other_organisations_cost_a_projection_one_read_of_its_case(
    sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    """With subscribers elsewhere asking for the event's type, the projection reads who sees its
    case (by primary key) and not the subscriptions; none asking for it, not even that."""
    outsider = await make_actor(sessions, OrgKind.CREDITOR)
    theirs = await add_subscription(sessions, outsider.org_id, URL)
    change = await status_changes(sessions, creditor)
    await change()
    with sent_statements(sessions) as sent:
        await change()
    assert [s for s in sent if s.startswith(("SELECT", "INSERT", "UPDATE"))] == [
        "UPDATE CASES SET",
        "INSERT INTO OUTBOX_EVENTS",
        "SELECT CASES.ID, CASES.CREDITOR_ID,",
    ]
    async with transaction(sessions) as session:
        await session.execute(
            update(WebhookSubscription)
            .where(WebhookSubscription.id == theirs.id)
            .values(events=["task.created"])
        )
    await change()  # loads the view again
    with sent_statements(sessions) as sent:
        await change()
    assert [s for s in sent if s.startswith(("SELECT", "INSERT", "UPDATE"))] == [
        "UPDATE CASES SET",
        "INSERT INTO OUTBOX_EVENTS",
    ]
    assert await delivered_events(sessions, theirs) == []


async def test_a_subscription_made_by_another_process_gets_the_very_next_projections_event(
    sessions: async_sessionmaker[AsyncSession],
    elsewhere: async_sessionmaker[AsyncSession],
    creditor: Actor,
) -> None:
    """The worker's view is loaded (nobody subscribes); another process (the API) then
    creates, pauses, re-enables, narrows and deletes a subscription, each committed a moment
    before a projection: every projection acts on the subscription as it is by then."""
    change = await status_changes(sessions, creditor)
    await change()
    await change()  # the view is known: these sent nothing for webhooks

    subscription = await add_subscription(elsewhere, creditor.org_id, URL)
    first = await change()
    assert await delivered_events(sessions, subscription) == [first]

    async def alter(**values: object) -> None:
        async with transaction(elsewhere) as session:
            await session.execute(
                update(WebhookSubscription)
                .where(WebhookSubscription.id == subscription.id)
                .values(**values)
            )

    await alter(is_active=False)
    await change()  # paused: nothing
    await alter(is_active=True)
    second = await change()
    await alter(events=["task.created"])
    await change()  # no longer asks for status changes
    await alter(events=["case.status.changed"])
    third = await change()
    assert await delivered_events(sessions, subscription) == [first, second, third]

    async with transaction(elsewhere) as session:
        await session.execute(
            delete(WebhookSubscription).where(WebhookSubscription.id == subscription.id)
        )
    await change()  # gone: the projection writes no delivery for it (and does not fail)
    assert await delivered_events(sessions, subscription) == []


async def test_the_version_moves_with_every_change_fan_out_reads_and_no_other(
    sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    async def version() -> int | None:
        async with sessions() as session:
            return await session.scalar(select(WebhookSubscriptionsVersion.version))

    async def alter(subscription: WebhookSubscription, **values: object) -> int | None:
        async with transaction(sessions) as session:
            await session.execute(
                update(WebhookSubscription)
                .where(WebhookSubscription.id == subscription.id)
                .values(**values)
            )
        return await version()

    subscription = await add_subscription(sessions, creditor.org_id, URL)
    created = await version()
    assert created is not None
    assert await alter(subscription, consecutive_failures=3, url=URL + "/y") == created
    paused = await alter(subscription, is_active=False)
    assert paused not in (None, created)
    narrowed = await alter(subscription, events=["task.created"])
    assert narrowed not in (None, created, paused)
    moved = await alter(subscription, org_id=(await make_actor(sessions, OrgKind.CREDITOR)).org_id)
    assert moved not in (None, created, paused, narrowed)
    async with transaction(sessions) as session:
        await session.execute(delete(WebhookSubscription))
    assert await version() not in (None, created, paused, narrowed, moved)
