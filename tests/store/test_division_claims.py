"""A submission and a deletion racing for one division: exactly one of them wins, on SQLite and
PostgreSQL alike, so no case ever names a deleted division (store/divisions.py)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.divisions import DivisionDetails
from store import divisions as division_store
from store.db import transaction
from store.divisions import Deletion, DivisionUnavailable
from store.models import Division
from tests.support import SEED_TIME, Actor


async def _division(sessions: async_sessionmaker[AsyncSession], creditor: Actor) -> uuid.UUID:
    details = DivisionDetails(company_name="Sales", city="Aarhus", country_code="DK")
    division = division_store.new_division(
        division_id=uuid.uuid4(), creditor_id=creditor.org_id, details=details, now=SEED_TIME
    )
    async with transaction(sessions) as session:
        session.add(division)
    return division.id


async def test_a_deletion_waits_for_a_submission_claiming_the_division_and_is_refused(
    sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    division_id = await _division(sessions, creditor)
    async with transaction(sessions) as session:
        await division_store.claim(session, division_id=division_id, creditor_id=creditor.org_id)
        deleting = asyncio.create_task(
            division_store.delete_division(
                sessions=sessions, creditor_id=creditor.org_id, division_id=division_id
            )
        )
        await asyncio.sleep(0.3)
        assert not deleting.done()  # it waits for the claim's transaction
    assert await deleting is Deletion.IN_USE


async def test_a_submission_waits_for_a_deletion_and_then_finds_no_division(
    sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    division_id = await _division(sessions, creditor)

    async def submit() -> None:
        async with transaction(sessions) as session:
            await division_store.claim(
                session, division_id=division_id, creditor_id=creditor.org_id
            )

    async with transaction(sessions) as session:
        await session.execute(delete(Division).where(Division.id == division_id))
        claiming = asyncio.create_task(submit())
        await asyncio.sleep(0.3)
        assert not claiming.done()  # it waits for the deletion's transaction
    with pytest.raises(DivisionUnavailable):
        await claiming


async def test_an_archived_or_another_creditors_division_cannot_be_claimed(
    sessions: async_sessionmaker[AsyncSession], creditor: Actor, partner: Actor
) -> None:
    division_id = await _division(sessions, creditor)
    async with transaction(sessions) as session:
        with pytest.raises(DivisionUnavailable):
            await division_store.claim(session, division_id=division_id, creditor_id=partner.org_id)
    await division_store.archive(
        sessions=sessions, creditor_id=creditor.org_id, division_id=division_id, now=SEED_TIME
    )
    async with transaction(sessions) as session:
        with pytest.raises(DivisionUnavailable):
            await division_store.claim(
                session, division_id=division_id, creditor_id=creditor.org_id
            )
    # Neither attempt counts: the archived division may still be deleted.
    deleted = await division_store.delete_division(
        sessions=sessions, creditor_id=creditor.org_id, division_id=division_id
    )
    assert deleted is Deletion.DELETED
