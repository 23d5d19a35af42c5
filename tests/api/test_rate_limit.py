"""Per-key rate limiting: 429 problem+json with Retry-After, one key never slows another."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.ratelimit import RateLimiter
from settings import Settings
from tests.support import Actor


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_the_burst_then_refills_at_the_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_minute=60, burst=3, clock=clock)
    assert [limiter.take("k") for _ in range(3)] == [None, None, None]
    assert limiter.take("k") == 1  # one request a second: the next in a second
    assert limiter.take("other") is None  # its own bucket
    clock.now += 1
    assert limiter.take("k") is None
    assert limiter.take("k") == 1
    clock.now += 3600  # refills to the burst, never beyond
    assert [limiter.take("k") for _ in range(4)] == [None, None, None, 1]


def test_zero_per_minute_turns_limiting_off() -> None:
    limiter = RateLimiter(per_minute=0, burst=1)
    assert all(limiter.take("k") is None for _ in range(1000))


@pytest.fixture
async def limited_api(
    settings: Settings, dev_env: WorkflowEnvironment
) -> AsyncIterator[httpx.AsyncClient]:
    limited = settings.model_copy(update={"rate_limit_per_minute": 6, "rate_limit_burst": 3})
    app = create_app(limited, temporal=dev_env.client)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://caseloop.test") as api:
            yield api


async def test_a_key_over_its_limit_gets_429_with_retry_after(
    limited_api: httpx.AsyncClient, creditor: Actor, partner: Actor
) -> None:
    statuses = [
        (await limited_api.get("/api/cases", headers=creditor.headers)).status_code
        for _ in range(3)
    ]
    assert statuses == [200, 200, 200]
    refused = await limited_api.get("/api/cases", headers=creditor.headers)
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 10
    # Another key is not slowed down, and a request without a valid key is still a 401.
    assert (await limited_api.get("/api/cases", headers=partner.headers)).status_code == 200
    assert (await limited_api.get("/api/cases")).status_code == 401
