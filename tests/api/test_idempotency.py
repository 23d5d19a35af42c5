"""Idempotency-Key under concurrency and crashes: one command per key, whatever the timing.

Requests with one key that arrive together run the command once (the duplicate replays the
first answer or is told to retry); a claim left by a crashed request expires after its lease;
a command re-run after a crash between its commit and storing the response writes nothing twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import httpx
import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api import idempotency
from api.app import create_app
from settings import Settings
from store.db import transaction
from store.models import Attachment, BankAccount, IdempotencyRecord
from tests.api.test_chat import PDF, stored_files
from tests.api.test_tasks import IBAN_DK, assign, ready_case
from tests.support import Actor, case_body

PAIRS = 15
ACCOUNT = {"iban": IBAN_DK, "holderName": "Acme ApS", "currencyCode": "DKK"}


async def accounts_of(sessions: async_sessionmaker[AsyncSession], actor: Actor) -> list[str]:
    async with sessions() as session:
        ids = await session.scalars(
            select(BankAccount.id).where(BankAccount.org_id == actor.org_id)
        )
        return [str(i) for i in ids]


async def create_account(api: httpx.AsyncClient, actor: Actor, key: str) -> httpx.Response:
    return await api.post(
        "/api/bank-accounts", json=ACCOUNT, headers={**actor.headers, "Idempotency-Key": key}
    )


def is_first_answer_or_in_progress(response: httpx.Response, first: httpx.Response) -> bool:
    if response.status_code == 409:
        return (
            response.json()["code"] == "idempotency_in_progress"
            and response.headers["Retry-After"].isdigit()
        )
    return response.status_code == first.status_code and response.json() == first.json()


async def crash_before_storing(
    sessions: async_sessionmaker[AsyncSession], actor: Actor, key: str, *, age: dt.timedelta
) -> None:
    """Make the key look as a request left it that committed its work and then died: claimed
    ``age`` ago, no response stored."""
    async with transaction(sessions) as session:
        await session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.org_id == actor.org_id, IdempotencyRecord.key == key)
            .values(
                status_code=None,
                response_body=None,
                created_at=dt.datetime.now(dt.UTC) - age,
            )
        )


def past_the_lease(settings: Settings) -> dt.timedelta:
    """Older than any lease (API_UPDATE_TIMEOUT_SECONDS plus a margin): a crashed request's."""
    return dt.timedelta(seconds=settings.api_update_timeout_seconds) + dt.timedelta(hours=1)


async def test_simultaneous_requests_with_one_key_create_one_bank_account_per_key(
    api: httpx.AsyncClient, creditor: Actor, sessions: async_sessionmaker[AsyncSession]
) -> None:
    keys = [str(uuid.uuid4()) for _ in range(PAIRS)]
    answers = await asyncio.gather(
        *(create_account(api, creditor, key) for key in keys for _ in range(2))
    )
    pairs = [answers[i : i + 2] for i in range(0, len(answers), 2)]
    ids = []
    for pair in pairs:
        [first] = [
            r for r in pair if r.status_code == 201 and "Idempotent-Replayed" not in r.headers
        ]
        [second] = [r for r in pair if r is not first]
        assert is_first_answer_or_in_progress(second, first), second.text
        ids.append(first.json()["id"])
    assert sorted(await accounts_of(sessions, creditor)) == sorted(ids)
    # Once the first request is done, every later one replays it.
    for key, account_id in zip(keys, ids, strict=True):
        again = await create_account(api, creditor, key)
        assert (again.status_code, again.json()["id"]) == (201, account_id)
        assert again.headers["Idempotent-Replayed"] == "true"


async def test_duplicate_while_the_first_request_runs_gets_409_in_progress(
    api: httpx.AsyncClient,
    creditor: Actor,
    sessions: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(idempotency, "WAIT_SECONDS", 0.3, raising=False)
    key = str(uuid.uuid4())
    first = await create_account(api, creditor, key)
    assert first.status_code == 201, first.text
    await crash_before_storing(sessions, creditor, key, age=dt.timedelta(seconds=1))
    busy = await create_account(api, creditor, key)
    assert busy.status_code == 409, busy.text
    assert busy.json()["code"] == "idempotency_in_progress"
    assert busy.headers["Retry-After"] == "1"
    assert busy.headers["content-type"] == "application/problem+json"
    assert await accounts_of(sessions, creditor) == [first.json()["id"]]


async def test_duplicate_waits_for_the_first_response_and_replays_it(
    api: httpx.AsyncClient, creditor: Actor, sessions: async_sessionmaker[AsyncSession]
) -> None:
    key = str(uuid.uuid4())
    first = await create_account(api, creditor, key)
    stored = await _stored(sessions, creditor, key)
    await crash_before_storing(sessions, creditor, key, age=dt.timedelta(seconds=1))

    async def finish_later() -> None:
        await asyncio.sleep(0.3)
        async with transaction(sessions) as session:
            await session.execute(
                update(IdempotencyRecord)
                .where(IdempotencyRecord.org_id == creditor.org_id, IdempotencyRecord.key == key)
                .values(status_code=201, response_body=stored)
            )

    waiting, _ = await asyncio.gather(create_account(api, creditor, key), finish_later())
    assert (waiting.status_code, waiting.json()) == (201, first.json())
    assert waiting.headers["Idempotent-Replayed"] == "true"


async def _stored(sessions: async_sessionmaker[AsyncSession], actor: Actor, key: str) -> str:
    async with sessions() as session:
        record = await session.get(IdempotencyRecord, (actor.org_id, key))
    assert record is not None and record.response_body is not None
    return record.response_body


async def test_crash_between_commit_and_storing_the_response_creates_no_second_bank_account(
    api: httpx.AsyncClient,
    creditor: Actor,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    key = str(uuid.uuid4())
    first = await create_account(api, creditor, key)
    assert first.status_code == 201, first.text
    # The claim of the crashed request outlived its lease: the retry takes it over.
    await crash_before_storing(sessions, creditor, key, age=past_the_lease(settings))
    retried = await create_account(api, creditor, key)
    assert (retried.status_code, retried.json()) == (201, first.json())
    assert "Idempotent-Replayed" not in retried.headers  # it ran again, and found the account
    assert await accounts_of(sessions, creditor) == [first.json()["id"]]
    replay = await create_account(api, creditor, key)
    assert replay.headers["Idempotent-Replayed"] == "true"

    # Even with the key's record gone altogether, the same key answers the same account.
    async with transaction(sessions) as session:
        await session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.key == key))
    again = await create_account(api, creditor, key)
    assert (again.status_code, again.json()) == (201, first.json())
    assert await accounts_of(sessions, creditor) == [first.json()["id"]]
    # ...while another body under that key is refused, not answered with the first account.
    async with transaction(sessions) as session:
        await session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.key == key))
    other = await api.post(
        "/api/bank-accounts",
        json={**ACCOUNT, "holderName": "Someone Else"},
        headers={**creditor.headers, "Idempotency-Key": key},
    )
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    assert await accounts_of(sessions, creditor) == [first.json()["id"]]


async def test_stale_claim_is_taken_over_by_one_retry_only(
    api: httpx.AsyncClient,
    creditor: Actor,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    key = str(uuid.uuid4())
    first = await create_account(api, creditor, key)
    await crash_before_storing(sessions, creditor, key, age=past_the_lease(settings))
    retries = await asyncio.gather(*(create_account(api, creditor, key) for _ in range(4)))
    assert all(is_first_answer_or_in_progress(r, first) for r in retries), [r.text for r in retries]
    assert (
        sum("Idempotent-Replayed" not in r.headers and r.status_code == 201 for r in retries) == 1
    )
    assert await accounts_of(sessions, creditor) == [first.json()["id"]]


async def test_simultaneous_uploads_with_one_key_store_one_file_per_key(
    api: httpx.AsyncClient,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cid = (await ready_case(api, creditor))["caseId"]
    assert (await assign(api, ops, cid, partner)).status_code == 200

    async def upload(key: str) -> httpx.Response:
        return await api.post(
            f"/api/cases/{cid}/attachments",
            files={"file": ("a.pdf", PDF, "application/pdf")},
            headers={**partner.headers, "Idempotency-Key": key},
        )

    keys = [str(uuid.uuid4()) for _ in range(10)]
    answers = await asyncio.gather(*(upload(key) for key in keys for _ in range(2)))
    ids = set()
    for first, second in (answers[i : i + 2] for i in range(0, len(answers), 2)):
        if first.status_code != 201 or "Idempotent-Replayed" in first.headers:
            first, second = second, first
        assert first.status_code == 201, first.text
        assert is_first_answer_or_in_progress(second, first), second.text
        ids.add(first.json()["id"])
    async with sessions() as session:
        rows = set(
            await session.scalars(select(Attachment.id).where(Attachment.case_id == uuid.UUID(cid)))
        )
    assert {str(i) for i in rows} == ids and len(ids) == len(keys)
    assert len(stored_files(settings)) == len(keys)

    # A crash after the file was recorded: the retry answers the same file, stores no bytes again.
    await crash_before_storing(sessions, partner, keys[0], age=past_the_lease(settings))
    retried = await upload(keys[0])
    assert retried.status_code == 201, retried.text
    assert retried.json()["id"] in ids
    assert len(stored_files(settings)) == len(keys)


async def test_a_5xx_frees_the_key_so_the_retry_runs_at_once(
    api: httpx.AsyncClient, settings: Settings, creditor: Actor
) -> None:
    key = {**creditor.headers, "Idempotency-Key": str(uuid.uuid4())}
    body = case_body()
    offline = settings.model_copy(update={"temporal_address": "127.0.0.1:1"})
    app = create_app(offline)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            down = await client.post("/api/cases", json=body, headers=key)
            assert (down.status_code, down.json()["code"]) == (503, "temporal_unavailable")
    created = await api.post("/api/cases", json=body, headers=key)
    assert created.status_code == 201, created.text
    assert "Idempotent-Replayed" not in created.headers
