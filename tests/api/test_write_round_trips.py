"""How many database round trips the API makes for one keyed write (issue 10: the API's own
work per action). Counts, not timings: bench/api_overhead.py measures the time."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from domain.enums import OrgKind
from settings import Settings
from tests.api.test_status import in_collection
from tests.api.test_tasks import bank_account, sign
from tests.support import Actor, case_body, make_actor, thread_trips

# A keyed write: claim the key (INSERT) and read the case (SELECT) in one transaction, committed
# before the workflow is asked (COMMIT); read the answer back (SELECT) and store it in the same
# transaction (UPDATE, COMMIT). Before issue 10's second session: 8; before its third: 7 (the
# claim had a transaction of its own).
KEYED_WRITE_ROUND_TRIPS = 6
# A chat message is answered from the update's result, not read back: one SELECT fewer (7 before
# issue 10's third session).
KEYED_CHAT_ROUND_TRIPS = 5


class RoundTrips:
    """Statements, commits and rollbacks on one engine while ``counting``."""

    def __init__(self) -> None:
        self.counting = False
        self.seen: list[str] = []

    def listen(self, engine: Any) -> None:
        self.engine = engine

        def statement(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
            if self.counting:
                self.seen.append(sql.split()[0].upper())

        def ended(kind: str) -> Any:
            def record(_conn: Any) -> None:
                if self.counting:
                    self.seen.append(kind)

            return record

        event.listen(engine, "after_cursor_execute", statement)
        event.listen(engine, "commit", ended("COMMIT"))
        event.listen(engine, "rollback", ended("ROLLBACK"))


@pytest.fixture
async def counted(
    settings: Settings, dev_env: WorkflowEnvironment, worker: Worker
) -> AsyncIterator[tuple[httpx.AsyncClient, RoundTrips]]:
    """The real app (as the ``api`` fixture) with its own engine's round trips counted; the
    worker's projections run on another engine and are not counted."""
    app = create_app(settings, temporal=dev_env.client)
    trips = RoundTrips()
    async with app.router.lifespan_context(app):
        trips.listen(app.state.sessions.kw["bind"].sync_engine)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://caseloop.test") as api:
            yield api, trips


async def _keyed(
    api: httpx.AsyncClient, trips: RoundTrips, actor: Actor, path: str, body: dict[str, Any]
) -> tuple[httpx.Response, list[str]]:
    trips.seen.clear()
    trips.counting = True
    try:
        response = await api.post(
            path, json=body, headers={**actor.headers, "Idempotency-Key": str(uuid.uuid4())}
        )
    finally:
        trips.counting = False
    return response, list(trips.seen)


async def test_a_keyed_chat_message_takes_five_database_round_trips_and_a_status_change_six(
    counted: tuple[httpx.AsyncClient, RoundTrips], creditor: Actor, partner: Actor, ops: Actor
) -> None:
    api, trips = counted
    case = await in_collection(api, creditor, partner, ops)
    cid = case["caseId"]  # the partner's key is cached by now (api.keycache)
    posted, chat = await _keyed(api, trips, partner, f"/api/cases/{cid}/chats", {"message": "Hi"})
    assert posted.status_code == 201, posted.text
    moved, status = await _keyed(
        api,
        trips,
        partner,
        f"/api/cases/{cid}/status",
        {"status": "Payment Plan", "subStatus": "Plan active", "note": "12 instalments"},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["status"] == "Payment Plan"
    expected = ["INSERT", "SELECT", "COMMIT", "SELECT", "UPDATE", "COMMIT"]
    assert len(expected) == KEYED_WRITE_ROUND_TRIPS
    assert status == expected
    # The message is not read back: its answer comes from the update's result.
    assert chat == ["INSERT", "SELECT", "COMMIT", "UPDATE", "COMMIT"]
    assert len(chat) == KEYED_CHAT_ROUND_TRIPS


async def test_a_keyed_action_on_a_case_the_caller_cannot_see_stores_its_404_with_the_claim(
    counted: tuple[httpx.AsyncClient, RoundTrips],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The case read that answers 404 runs in the claim's transaction: claim, read and stored
    answer are one commit, and the same key replays the 404."""
    api, trips = counted
    case = await in_collection(api, creditor, partner, ops)
    other = await make_actor(sessions, OrgKind.PARTNER)
    key = {"Idempotency-Key": str(uuid.uuid4())}
    trips.seen.clear()
    trips.counting = True
    try:
        hidden = await api.post(
            f"/api/cases/{case['caseId']}/chats",
            json={"message": "Hi"},
            headers={**other.headers, **key},
        )
    finally:
        trips.counting = False
    assert (hidden.status_code, hidden.json()["code"]) == (404, "not_found")
    # The stranger's key is looked up first (SELECT, COMMIT), then: claim, read, store.
    assert trips.seen[-4:] == ["INSERT", "SELECT", "UPDATE", "COMMIT"]
    again = await api.post(
        f"/api/cases/{case['caseId']}/chats",
        json={"message": "Hi"},
        headers={**other.headers, **key},
    )
    assert again.status_code == 404
    assert again.headers["Idempotent-Replayed"] == "true"


async def test_on_sqlite_each_round_trip_of_a_keyed_chat_message_is_one_trip_to_the_drivers_thread(
    counted: tuple[httpx.AsyncClient, RoundTrips], creditor: Actor, partner: Actor, ops: Actor
) -> None:
    """store/sqlite_driver.py: the five round trips are five calls into the SQLite connection's
    thread (SQLAlchemy's aiosqlite adapter made 12: three per statement, four with rows)."""
    api, trips = counted
    engine = trips.engine
    if engine.dialect.name != "sqlite":
        pytest.skip("a SQLite driver's thread")
    case = await in_collection(api, creditor, partner, ops)
    cid = case["caseId"]
    with thread_trips(engine) as calls:
        posted, chat = await _keyed(
            api, trips, partner, f"/api/cases/{cid}/chats", {"message": "Hi"}
        )
    assert posted.status_code == 201, posted.text
    assert chat == ["INSERT", "SELECT", "COMMIT", "UPDATE", "COMMIT"]
    assert calls == ["_run", "_run", "commit", "_run", "commit"]


async def test_creating_a_case_reads_its_creditor_and_bank_account_in_one_statement(
    counted: tuple[httpx.AsyncClient, RoundTrips], creditor: Actor
) -> None:
    """The contract and the named bank account in one SELECT (two before issue 10's fourth
    session), the creditor reference reserved in one transaction, the answer read once."""
    api, trips = counted
    await sign(api, creditor)
    body = case_body(bankAccountId=await bank_account(api, creditor))
    trips.seen.clear()
    trips.counting = True
    try:
        created = await api.post("/api/cases", json=body, headers=creditor.headers)
    finally:
        trips.counting = False
    assert created.status_code == 201, created.text
    assert created.headers["Location"] == f"/api/cases/{created.json()['caseId']}"
    # Read (and end the read: its COMMIT is skipped on SQLite, the event still fires), reserve,
    # read the answer; the request's session ends with it.
    assert trips.seen == ["SELECT", "COMMIT", "SELECT", "INSERT", "COMMIT", "SELECT", "ROLLBACK"]
