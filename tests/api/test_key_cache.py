"""The API-key cache (api/keycache.py): one database look-up per key and API_KEY_CACHE_SECONDS,
and a revoked key or deactivated user refused at most that long after the change."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import httpx
import pytest
from sqlalchemy import event, update
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.app import create_app
from api.keycache import KeyCache
from domain.enums import OrgKind
from settings import Settings
from store.accounts import Principal, hash_key
from store.db import transaction
from store.models import ApiKey, User
from tests.support import Actor, make_actor

CACHE_SECONDS = 5.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def principal(n: int = 0) -> Principal:
    return Principal(uuid.uuid4(), uuid.uuid4(), OrgKind.CREDITOR, "DK", "UTC", f"org {n}")


def test_a_verified_key_is_trusted_for_its_seconds_then_looked_up_again() -> None:
    clock = FakeClock()
    cache = KeyCache(seconds=CACHE_SECONDS, clock=clock)
    who = principal()
    assert cache.get("clk_a") is None
    cache.put("clk_a", who)
    clock.now += CACHE_SECONDS - 0.01
    assert cache.get("clk_a") == who
    clock.now += 0.01
    assert cache.get("clk_a") is None, "trusted past API_KEY_CACHE_SECONDS"


def test_the_key_cache_off_remembers_nothing_and_keeps_no_keys_in_clear() -> None:
    off = KeyCache(seconds=0)
    off.put("clk_a", principal())
    assert off.get("clk_a") is None
    on = KeyCache(seconds=CACHE_SECONDS, max_entries=2)
    for n in range(3):
        on.put(f"clk_{n}", principal(n))
    assert on.get("clk_0") is None, "the oldest entry goes first past max_entries"
    assert on.get("clk_1") is not None and on.get("clk_2") is not None
    assert set(on._entries) == {hash_key("clk_1"), hash_key("clk_2")}


@pytest.fixture
async def cached_api(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, FakeClock]]:
    """The app with the key cache on (and its clock in the test's hands); no Temporal needed."""
    app = create_app(settings.model_copy(update={"api_key_cache_seconds": CACHE_SECONDS}))
    clock = FakeClock()
    app.state.key_cache.clock = clock
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://caseloop.test"
        ) as client,
    ):
        yield client, clock


def count_key_lookups() -> tuple[list[int], Callable[[], None]]:
    """How many statements read ``api_keys`` (a list of one count), and a function to stop."""
    seen = [0]

    def look(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "api_keys" in statement:
            seen[0] += 1

    event.listen(Engine, "before_cursor_execute", look)
    return seen, lambda: event.remove(Engine, "before_cursor_execute", look)


async def revoke(sessions: async_sessionmaker[AsyncSession], actor: Actor) -> None:
    async with transaction(sessions) as session:
        await session.execute(
            update(ApiKey)
            .where(ApiKey.key_hash == hash_key(actor.key))
            .values(revoked_at=dt.datetime.now(dt.UTC))
        )


async def deactivate(sessions: async_sessionmaker[AsyncSession], actor: Actor) -> None:
    async with transaction(sessions) as session:
        await session.execute(
            update(User).where(User.id == actor.principal.user_id).values(active=False)
        )


Change = Callable[[async_sessionmaker[AsyncSession], Actor], Coroutine[Any, Any, None]]


@pytest.mark.parametrize("change", [revoke, deactivate], ids=["revoked key", "deactivated user"])
async def test_a_revoked_key_or_deactivated_user_is_refused_once_the_cache_seconds_pass(
    cached_api: tuple[httpx.AsyncClient, FakeClock],
    sessions: async_sessionmaker[AsyncSession],
    change: Change,
) -> None:
    client, clock = cached_api
    actor = await make_actor(sessions, OrgKind.CREDITOR)
    lookups, stop = count_key_lookups()
    try:
        for _ in range(3):
            assert (await client.get("/api/account", headers=actor.headers)).status_code == 200
        assert lookups[0] == 1, "one database look-up for a key's burst of requests"
    finally:
        stop()
    await change(sessions, actor)
    clock.now += CACHE_SECONDS - 0.5
    # The documented bound (docs/api.md): still trusted within API_KEY_CACHE_SECONDS ...
    assert (await client.get("/api/account", headers=actor.headers)).status_code == 200
    clock.now += 0.5
    # ... and refused from then on, every time.
    for _ in range(2):
        refused = await client.get("/api/account", headers=actor.headers)
        assert refused.status_code == 401, refused.text
        assert refused.json()["code"] == "unauthenticated"


async def test_without_the_cache_a_revoked_key_is_refused_at_once_and_unknown_keys_are_not_kept(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = create_app(settings.model_copy(update={"api_key_cache_seconds": 0}))
    actor = await make_actor(sessions, OrgKind.CREDITOR)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://caseloop.test"
        ) as client,
    ):
        assert (await client.get("/api/account", headers=actor.headers)).status_code == 200
        await revoke(sessions, actor)
        assert (await client.get("/api/account", headers=actor.headers)).status_code == 401
    cached = create_app(settings.model_copy(update={"api_key_cache_seconds": CACHE_SECONDS}))
    async with (
        cached.router.lifespan_context(cached),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=cached), base_url="http://caseloop.test"
        ) as client,
    ):
        unknown = {"Authorization": "Bearer clk_not-a-key"}
        assert (await client.get("/api/account", headers=unknown)).status_code == 401
        assert not cached.state.key_cache._entries, "a refused key is not remembered"
