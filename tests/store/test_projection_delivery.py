"""A projection delivers what the workflow's outboxes hold, in the same local activity.

The case's signals to its creditor's account and an account's releases of waiting cases go with
the projection that follows the change (the pairs a case links are rows the projection writes:
docs/decisions/0015). The activity says how
many of each it delivered (the first ones, in order); what failed or was too slow is left to the
workflow's outbox, and never fails the write (docs/decisions/0009).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities import projection as projection_module
from activities.accounts import AccountActivities
from activities.projection import ProjectionActivities
from domain.accounts import AccountProjection, AccountSignal, CaseAccountEvent
from domain.cases import CaseProjection
from domain.chat import RelationshipLink, relationship_id
from store.db import transaction
from store.models import Case, Organisation, Relationship
from tests.store.test_projection_statements import T1
from tests.support import Actor, new_case_record


class Messenger(AccountActivities):
    """Records what it is asked to send; fails (or hangs) for the items it is told to."""

    def __init__(self, *, failing: set[Any] = frozenset(), hanging: bool = False) -> None:
        self.sent: list[Any] = []
        self.failing = failing
        self.hanging = hanging

    async def _send(self, item: Any) -> None:
        if self.hanging:
            await asyncio.sleep(60)
        if item in self.failing:
            raise RuntimeError("the Temporal frontend did not answer")
        self.sent.append(item)

    async def tell_account(self, signal: AccountSignal) -> None:
        await self._send(signal.event.case_id)

    async def release(self, case_ids: list[UUID]) -> None:
        await self._send(tuple(case_ids))


def signal(creditor: Actor, case_id: UUID) -> AccountSignal:
    return AccountSignal(
        creditor=creditor.org_ref,
        name="case_opened",
        event=CaseAccountEvent(case_id=case_id, needs_bank_account=True),
    )


async def project(
    sessions: async_sessionmaker[AsyncSession],
    messenger: Messenger,
    creditor: Actor,
    partner: Actor,
    signals: list[UUID],
    *,
    at: dt.datetime = T1,
) -> tuple[UUID, dict[str, int]]:
    record = new_case_record(creditor)
    record.created_at = record.last_status_change = at
    result = await ActivityEnvironment().run(
        ProjectionActivities(sessions, messenger).project_case,
        CaseProjection(
            version=1,
            modified_at=at,
            case=record,
            account_signals=[signal(creditor, case_id) for case_id in signals],
            relationship_links=[
                RelationshipLink(
                    creditor=creditor.org_ref, partner=partner.org_ref, case_id=record.case_id
                )
            ],
        ),
    )
    return record.case_id, result.sent


async def test_a_projection_delivers_the_signals_it_carries_in_order_and_writes_the_pair_it_links(
    sessions: async_sessionmaker[AsyncSession], creditor: Actor, partner: Actor
) -> None:
    messenger = Messenger()
    first, second = uuid.uuid4(), uuid.uuid4()
    case_id, sent = await project(sessions, messenger, creditor, partner, [first, second])
    assert messenger.sent == [first, second]
    assert sent == {"account_signals": 2}
    async with sessions() as session:
        assert await session.get(Case, case_id) is not None
        pair = await session.get(Relationship, relationship_id(creditor.org_id, partner.org_id))
    # The pair's row, in the case projection's transaction; its workflow starts with its first
    # general-chat message.
    assert pair is not None
    assert (pair.creditor_id, pair.partner_id, pair.version) == (creditor.org_id, partner.org_id, 0)
    assert pair.linked_at == T1


async def test_a_pair_keeps_the_time_its_first_case_linked_it_and_what_its_workflow_wrote(
    sessions: async_sessionmaker[AsyncSession], creditor: Actor, partner: Actor
) -> None:
    await project(sessions, Messenger(), creditor, partner, [])
    pair_id = relationship_id(creditor.org_id, partner.org_id)
    await project(sessions, Messenger(), creditor, partner, [], at=T1 + dt.timedelta(days=3))
    async with sessions() as session:
        pair = await session.get(Relationship, pair_id)
        assert pair is not None
        assert (pair.version, pair.linked_at) == (0, T1)
    async with transaction(sessions) as session:
        await session.execute(
            update(Relationship).where(Relationship.id == pair_id).values(version=3)
        )
    await project(sessions, Messenger(), creditor, partner, [], at=T1 + dt.timedelta(days=9))
    async with sessions() as session:
        pair = await session.get(Relationship, pair_id)
        assert pair is not None
        assert (pair.version, pair.linked_at) == (3, T1)


async def test_a_signal_that_fails_leaves_it_and_what_follows_to_the_outbox_and_the_write_stands(
    sessions: async_sessionmaker[AsyncSession], creditor: Actor, partner: Actor
) -> None:
    first, failing, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    messenger = Messenger(failing={failing})
    case_id, sent = await project(sessions, messenger, creditor, partner, [first, failing, third])
    # Only the first was delivered; the failed one and everything after it stay queued in
    # the workflow (its outbox sends them in order, with retries).
    assert messenger.sent == [first]
    assert sent == {"account_signals": 1}
    async with sessions() as session:
        assert await session.get(Case, case_id) is not None


async def test_a_slow_delivery_is_left_to_the_outbox_and_does_not_hold_the_projection(
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(projection_module, "DELIVERY_TIMEOUT", 0.05)
    messenger = Messenger(hanging=True)
    case_id, sent = await asyncio.wait_for(
        project(sessions, messenger, creditor, partner, [uuid.uuid4()]), timeout=10
    )
    assert messenger.sent == []
    assert sent == {}
    async with sessions() as session:
        assert await session.get(Case, case_id) is not None


async def test_an_account_projection_releases_the_cases_it_carries_all_at_once(
    sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    cases = [uuid.uuid4(), uuid.uuid4()]
    messenger = Messenger()
    result = await ActivityEnvironment().run(
        ProjectionActivities(sessions, messenger).project_account,
        AccountProjection(
            creditor_id=creditor.org_id, version=1, contract_signed_at=T1, to_release=cases
        ),
    )
    assert messenger.sent == [tuple(cases)]
    assert result.sent == {"to_release": 2}
    failing = Messenger(failing={tuple(cases)})
    again = await ActivityEnvironment().run(
        ProjectionActivities(sessions, failing).project_account,
        AccountProjection(
            creditor_id=creditor.org_id, version=2, contract_signed_at=T1, to_release=cases
        ),
    )
    assert again.sent == {}
    async with sessions() as session:
        account = await session.get(Organisation, creditor.org_id)
        assert account is not None and account.account_version == 2
