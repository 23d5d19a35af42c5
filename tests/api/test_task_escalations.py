"""A task's escalation-ladder steps that fired are part of the task's JSON (``escalations``),
in the list and on its own, as its owning workflow's projection wrote them."""

from __future__ import annotations

import datetime as dt

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.projection import write_tasks
from domain.escalation import FiredStep
from domain.tasks import AccessLevel
from store.db import transaction
from tests.support import SEED_TIME, Actor, add_case, make_task


async def test_a_tasks_fired_ladder_steps_are_listed_in_order_and_none_is_an_empty_list(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    case_id = await add_case(sessions, creditor)
    deadline = SEED_TIME + dt.timedelta(days=3)
    escalated = make_task(creditor, access=AccessLevel.CREDITOR, case_id=case_id, deadline=deadline)
    escalated.escalations = [
        FiredStep(step="approaching", at=deadline - dt.timedelta(days=1), deadline=deadline),
        FiredStep(step="breach", at=deadline, deadline=deadline),
    ]
    quiet = make_task(creditor, access=AccessLevel.CREDITOR, case_id=case_id, deadline=None)
    async with transaction(sessions) as session:
        await write_tasks(session, [escalated, quiet])

    listed = await api.get("/api/tasks", headers=creditor.headers)
    assert listed.status_code == 200, listed.text
    by_id = {task["id"]: task for task in listed.json()["tasks"]}
    stamp = deadline.isoformat().replace("+00:00", "Z")
    assert by_id[escalated.id]["escalations"] == [
        {
            "step": "approaching",
            "at": (deadline - dt.timedelta(days=1)).isoformat().replace("+00:00", "Z"),
            "deadline": stamp,
        },
        {"step": "breach", "at": stamp, "deadline": stamp},
    ]
    assert by_id[quiet.id]["escalations"] == []
    one = await api.get(f"/api/tasks/{escalated.id}", headers=creditor.headers)
    assert one.status_code == 200, one.text
    assert [step["step"] for step in one.json()["escalations"]] == ["approaching", "breach"]
