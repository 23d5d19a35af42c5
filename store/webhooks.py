"""Webhook subscriptions and the delivery log in the read model.

``fan_out`` runs in the projection's transaction (``activities.projection.write_events``): it
writes one ``webhook_deliveries`` row per outbox event and active subscription allowed to see
it (``domain.webhooks.audience``) and subscribed to its type. It keeps the active
subscriptions in memory per engine while the database's subscriptions version (a row triggers
bump on every change, read with the events' upsert) stays the same: a projection whose event
types no active subscription asks for sends no statement for webhooks; with no event, nothing. The delivery activity reads what is due with
``due_deliveries`` (one case's events strictly in ``seq`` order) and records each attempt with
``record_attempt``; the API's queries follow.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
import secrets
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    Row,
    Table,
    and_,
    bindparam,
    delete,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker
from sqlalchemy.sql.dml import Insert

from domain.tasks import OutboxEvent
from domain.webhooks import (
    CHAT_CREATED,
    CaseParties,
    WebhookDto,
    WebhookEventDto,
    audience,
    bodies,
    delivery_id,
)
from store.db import transaction
from store.models import (
    Case,
    OutboxEventRow,
    Relationship,
    WebhookDelivery,
    WebhookSubscription,
    WebhookSubscriptionsVersion,
)

SUBSCRIPTIONS: Table = WebhookSubscription.__table__  # type: ignore[assignment]
DELIVERIES: Table = WebhookDelivery.__table__  # type: ignore[assignment]
_CASES: Table = Case.__table__  # type: ignore[assignment]
_RELATIONSHIPS: Table = Relationship.__table__  # type: ignore[assignment]
_EVENTS: Table = OutboxEventRow.__table__  # type: ignore[assignment]
VERSIONS: Table = WebhookSubscriptionsVersion.__table__  # type: ignore[assignment]


def new_secret() -> str:
    """A Standard Webhooks signing secret: ``whsec_`` and 24 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


# -- fan-out (the projection's transaction) ------------------------------------------------------
def _relationship_id(event: OutboxEvent) -> UUID | None:
    value = event.payload.get("relationshipId") if event.type == CHAT_CREATED else None
    try:
        return UUID(str(value)) if value else None
    except ValueError:
        return None


# -- which subscriptions are active: a view kept per engine, as long as the database's version ---
# ``webhook_subscriptions_version`` holds one number that triggers change in the transaction of
# every insert, delete, or update of ``is_active``, ``org_id`` or ``events`` of a subscription
# (migration 0017), whichever process or code path writes. The projection reads it with the
# statement that writes its events (``EVENTS_RETURNING``); while it equals the number the
# active subscriptions were loaded with, they are what that statement's snapshot would read, so
# a projection nobody subscribes to sends no statement for webhooks. No row reads as 0.
_VERSION_NOW = func.coalesce(
    select(VERSIONS.c.version).where(VERSIONS.c.id == 1).scalar_subquery(), 0
)
_VERSION = select(_VERSION_NOW.label("version")).subquery("subscriptions_version")
# Every active subscription and the version, in one statement (one snapshot): the version row
# outer-joined with them, so it comes back also when there is none.
_ACTIVE = select(
    SUBSCRIPTIONS.c.id, SUBSCRIPTIONS.c.org_id, SUBSCRIPTIONS.c.events, _VERSION.c.version
).select_from(_VERSION.outerjoin(SUBSCRIPTIONS, SUBSCRIPTIONS.c.is_active))


# What the projection's upsert of outbox events returns for each event it wrote: the
# subscriptions' version, read in the same statement, so fan-out needs no statement of its own
# to know its view is current. (Returning the case's parties there too, as correlated
# subqueries, cost a chat message's projection more CPU than the SELECT it saved:
# docs/performance.md, issue 10's sixth session.)
EVENTS_RETURNING: tuple[ColumnElement[Any], ...] = (_VERSION_NOW.label("subscriptions_version"),)


@dataclass(frozen=True)
class Subscriber:
    id: UUID
    events: frozenset[str]


@dataclass(frozen=True)
class ActiveSubscriptions:
    """The active subscriptions as of ``version``, by organisation, and every type one asks for."""

    version: int
    by_org: dict[UUID, tuple[Subscriber, ...]]
    types: frozenset[str]


# One view per engine (a process's databases; the test suite makes an engine per test).
_ACTIVE_BY_ENGINE: weakref.WeakKeyDictionary[Engine, ActiveSubscriptions] = (
    weakref.WeakKeyDictionary()
)


@dataclass(frozen=True)
class WrittenEvents:
    """What the upsert of a projection's outbox events returned (``EVENTS_RETURNING``): the
    subscriptions' version (None: no row came back, every event was already delivered)."""

    version: int | None

    @classmethod
    def of(cls, rows: Sequence[Row[Any]]) -> WrittenEvents:
        return cls(version=rows[0].subscriptions_version if rows else None)


async def active_subscriptions(
    connection: AsyncConnection, version: int | None = None
) -> ActiveSubscriptions:
    """The active subscriptions: the engine's view when it was loaded at ``version`` (the
    version the caller's transaction just read), else loaded again, with the version, in one
    statement."""
    engine = connection.sync_engine
    known = _ACTIVE_BY_ENGINE.get(engine)
    if known is not None and version is not None and known.version == version:
        return known
    rows = (await connection.execute(_ACTIVE)).all()
    by_org: dict[UUID, list[Subscriber]] = {}
    for row in rows:
        if row.id is not None:
            by_org.setdefault(row.org_id, []).append(Subscriber(row.id, frozenset(row.events)))
    loaded = ActiveSubscriptions(
        version=rows[0].version,
        by_org={org: tuple(subs) for org, subs in by_org.items()},
        types=frozenset().union(*(s.events for subs in by_org.values() for s in subs)),
    )
    _ACTIVE_BY_ENGINE[engine] = loaded
    return loaded


async def fan_out(
    connection: AsyncConnection,
    events: Sequence[OutboxEvent],
    written: WrittenEvents | None = None,
) -> set[UUID]:
    """Write the deliveries ``events`` make; the subscriptions that got one (to be woken once
    the transaction commits). Deliveries are written by their derived ids, so a projection
    that runs again writes none twice (the first attempt's body stays).

    ``written``: what writing the events returned (the projection's upsert). With it, an
    unchanged view of the active subscriptions needs no statement: when there is none, or none
    asks for a type these events make, fan-out sends nothing; else it reads the parties of
    the events' cases (by primary key) and, for a general-chat message, the relationship's
    creditor. Without it (or after a change of any subscription), one SELECT loads the active
    subscriptions first."""
    if not events:
        return set()
    active = await active_subscriptions(connection, written.version if written else None)
    if not active.by_org:
        return set()
    # Events that make a type some active subscription asks for (the case's close code only
    # changes a body, never which types an event makes).
    wanted = [e for e in events if any(t in active.types for t, _, _ in bodies(e, None))]
    if not wanted:
        return set()
    case_ids = {e.case_id for e in wanted if e.case_id is not None}
    cases = (
        {
            row.id: CaseParties(row.creditor_id, row.partner_id, row.close_code)
            for row in await connection.execute(
                select(
                    _CASES.c.id, _CASES.c.creditor_id, _CASES.c.partner_id, _CASES.c.close_code
                ).where(_CASES.c.id.in_(case_ids))
            )
        }
        if case_ids
        else {}
    )
    relationship_ids = {r for r in map(_relationship_id, wanted) if r is not None}
    relationship_creditors: dict[UUID, UUID] = (
        {
            row.id: row.creditor_id
            for row in await connection.execute(
                select(_RELATIONSHIPS.c.id, _RELATIONSHIPS.c.creditor_id).where(
                    _RELATIONSHIPS.c.id.in_(relationship_ids)
                )
            )
        }
        if relationship_ids
        else {}
    )
    rows: list[dict[str, Any]] = []
    for event in wanted:
        case = cases.get(event.case_id) if event.case_id else None
        relationship = _relationship_id(event)
        allowed = audience(
            event, case, relationship_creditors.get(relationship) if relationship else None
        )
        subscribers = [s for org in allowed for s in active.by_org.get(org, ())]
        if not subscribers:
            continue
        made = list(bodies(event, case))
        for subscriber in subscribers:
            for event_type, event_id, body in made:
                if event_type in subscriber.events:
                    rows.append(_delivery_row(subscriber.id, event_type, event_id, event, body))
    if rows:
        await connection.execute(_insert_new(connection.dialect.name), rows)
    return {row["subscription_id"] for row in rows}


def _delivery_row(
    subscription_id: UUID,
    event_type: str,
    event_id: str,
    event: OutboxEvent,
    body: dict[str, Any],
) -> dict[str, Any]:
    return {
        "id": delivery_id(subscription_id, event_id),
        "subscription_id": subscription_id,
        "event_id": event_id,
        "replay_of": "",
        "case_id": event.case_id,
        "event_type": event_type,
        "payload": body,
        "created_at": event.occurred_at,
        "next_attempt_at": event.occurred_at,  # the first attempt is due at once
        "delivered_at": None,
        "failed_at": None,
        "attempt_count": 0,
        "last_response_code": None,
        "last_error": None,
    }


@functools.cache
def _insert_new(dialect: str) -> Insert:
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(DELIVERIES)
    return insert.on_conflict_do_nothing(index_elements=["id"])


# -- delivery (the subscription's workflow) --------------------------------------------------------
_EARLIER = DELIVERIES.alias("earlier")


def _held_back(by: ColumnElement[bool]) -> ColumnElement[bool]:
    """An earlier pending delivery of the same case and subscription meeting ``by`` exists."""
    return exists().where(
        _EARLIER.c.subscription_id == DELIVERIES.c.subscription_id,
        _EARLIER.c.case_id == DELIVERIES.c.case_id,
        _EARLIER.c.seq < DELIVERIES.c.seq,
        by,
    )


_DUE = (
    select(DELIVERIES)
    .where(
        DELIVERIES.c.subscription_id == bindparam("subscription_id"),
        DELIVERIES.c.next_attempt_at <= bindparam("now"),
        # A case whose earlier event waits for a retry holds its later events back.
        ~_held_back(_EARLIER.c.next_attempt_at > bindparam("now")),
    )
    .order_by(DELIVERIES.c.seq)
    .limit(bindparam("batch"))
)
# When the next delivery falls due: the earliest of each case's first pending delivery (and of
# those of no case); a held-back delivery is due no earlier than its case's first.
_NEXT_DUE = select(func.min(DELIVERIES.c.next_attempt_at)).where(
    DELIVERIES.c.subscription_id == bindparam("subscription_id"),
    DELIVERIES.c.next_attempt_at.is_not(None),
    ~_held_back(_EARLIER.c.next_attempt_at.is_not(None)),
)


async def due_deliveries(
    connection: AsyncConnection, subscription_id: UUID, now: dt.datetime, batch: int
) -> list[Row[Any]]:
    """The subscription's deliveries due at ``now`` whose case holds nothing earlier back,
    oldest first (at most ``batch``). Each case's rows come in ``seq`` order from its first
    pending one, so sending them in order, stopping at a failure, keeps the case's order."""
    result = await connection.execute(
        _DUE, {"subscription_id": subscription_id, "now": now, "batch": batch}
    )
    return list(result.all())


async def next_due(connection: AsyncConnection, subscription_id: UUID) -> dt.datetime | None:
    moment: dt.datetime | None = await connection.scalar(
        _NEXT_DUE, {"subscription_id": subscription_id}
    )
    return moment


async def record_attempt(
    connection: AsyncConnection,
    delivery: str,
    *,
    subscription_id: UUID,
    attempts: int,
    status_code: int | None,
    error: str | None,
    delivered_at: dt.datetime | None,
    next_attempt_at: dt.datetime | None,
    failed_at: dt.datetime | None,
) -> int:
    """Record one attempt of ``delivery`` and count it on its subscription (a success resets
    the count); the subscription's consecutive failures now."""
    await connection.execute(
        update(DELIVERIES)
        .where(DELIVERIES.c.id == delivery)
        .values(
            attempt_count=attempts,
            last_response_code=status_code,
            last_error=error,
            delivered_at=delivered_at,
            next_attempt_at=next_attempt_at,
            failed_at=failed_at,
        )
    )
    failures = 0 if delivered_at is not None else SUBSCRIPTIONS.c.consecutive_failures + 1
    counted = await connection.scalar(
        update(SUBSCRIPTIONS)
        .where(SUBSCRIPTIONS.c.id == subscription_id)
        .values(consecutive_failures=failures)
        .returning(SUBSCRIPTIONS.c.consecutive_failures)
    )
    return int(counted or 0)


async def disable(
    connection: AsyncConnection, subscription_id: UUID, reason: str, now: dt.datetime
) -> None:
    await connection.execute(
        update(SUBSCRIPTIONS)
        .where(SUBSCRIPTIONS.c.id == subscription_id)
        .values(is_active=False, disabled_reason=reason, updated_utc=now)
    )


async def prune(connection: AsyncConnection, cutoff: dt.datetime, batch: int) -> int:
    """Delete up to ``batch`` deliveries delivered or given up before ``cutoff``; how many."""
    old = (
        select(DELIVERIES.c.seq)
        .where(or_(DELIVERIES.c.delivered_at < cutoff, DELIVERIES.c.failed_at < cutoff))
        .limit(batch)
    )
    seqs = list(await connection.scalars(old))
    if seqs:
        await connection.execute(delete(DELIVERIES).where(DELIVERIES.c.seq.in_(seqs)))
    return len(seqs)


# -- the API ------------------------------------------------------------------------------------
def subscription_view(row: WebhookSubscription, *, with_secret: bool = False) -> WebhookDto:
    return WebhookDto(
        id=row.id,
        url=row.url,
        events=list(row.events),
        is_active=row.is_active,
        created_utc=row.created_utc,
        updated_utc=row.updated_utc,
        disabled_reason=row.disabled_reason,
        secret=row.secret if with_secret else None,
        is_test_mode=row.is_test_mode,
    )


async def subscriptions_of(session: AsyncSession, org_id: UUID) -> list[WebhookSubscription]:
    rows = await session.scalars(
        select(WebhookSubscription)
        .where(WebhookSubscription.org_id == org_id)
        .order_by(WebhookSubscription.created_utc, WebhookSubscription.id)
    )
    return list(rows)


async def subscription_of(
    session: AsyncSession, org_id: UUID, subscription_id: UUID
) -> WebhookSubscription | None:
    """The organisation's subscription with this id (None: none, or another's)."""
    row = await session.get(WebhookSubscription, subscription_id)
    return row if row is not None and row.org_id == org_id else None


def event_view(row: WebhookDelivery) -> WebhookEventDto:
    return WebhookEventDto(
        id=row.id,
        subscription_id=row.subscription_id,
        case_id=row.case_id,
        event_type=row.event_type,
        payload=json.dumps(row.payload, separators=(",", ":"), ensure_ascii=False),
        created_at=row.created_at,
        delivered_at=row.delivered_at,
        attempt_count=row.attempt_count,
        last_response_code=row.last_response_code,
        last_error=row.last_error,
        failed_at=row.failed_at,
        replay_of=row.replay_of or None,
    )


async def deliveries_of(
    session: AsyncSession,
    org_id: UUID,
    *,
    case_id: UUID | None,
    since: dt.datetime | None,
    limit: int,
) -> list[WebhookDelivery]:
    """The organisation's delivery log, newest first (its own subscriptions' only)."""
    query = (
        select(WebhookDelivery)
        .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
        .where(WebhookSubscription.org_id == org_id)
    )
    if case_id is not None:
        query = query.where(WebhookDelivery.case_id == case_id)
    if since is not None:
        query = query.where(WebhookDelivery.created_at >= since)
    query = query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.seq.desc())
    return list(await session.scalars(query.limit(limit)))


async def delivery_of(session: AsyncSession, org_id: UUID, delivery: str) -> WebhookDelivery | None:
    """The organisation's log entry with this id (None: none, or another's)."""
    row = (
        await session.execute(
            select(WebhookDelivery)
            .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
            .where(and_(WebhookDelivery.id == delivery, WebhookSubscription.org_id == org_id))
        )
    ).scalar_one_or_none()
    return row


def replay_row(original: WebhookDelivery, new_id: uuid.UUID, now: dt.datetime) -> WebhookDelivery:
    """A new delivery of ``original``'s body, due at once."""
    return WebhookDelivery(
        id=str(new_id),
        subscription_id=original.subscription_id,
        event_id=original.event_id,
        replay_of=original.id,
        case_id=original.case_id,
        event_type=original.event_type,
        payload=original.payload,
        created_at=now,
        next_attempt_at=now,
        delivered_at=None,
        failed_at=None,
        attempt_count=0,
        last_response_code=None,
        last_error=None,
    )


async def add_replay(
    factory: async_sessionmaker[AsyncSession],
    original: WebhookDelivery,
    new_id: uuid.UUID,
    now: dt.datetime,
) -> WebhookDelivery:
    """The replay of ``original`` with id ``new_id``: written now, or found (a retried request
    with the same Idempotency-Key derives the same id)."""
    async with transaction(factory) as session:
        existing = await session.scalar(
            select(WebhookDelivery).where(WebhookDelivery.id == str(new_id))
        )
        if existing is not None:
            return existing
        row = replay_row(original, new_id, now)
        session.add(row)
    return row
