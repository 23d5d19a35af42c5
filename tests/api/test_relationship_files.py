"""Files in the relationship (general) chat of a creditor-partner pair: uploaded to the pair,
attached to its messages, downloaded by its parties only, and never mixed up with case files."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.chat import relationship_id
from domain.enums import OrgKind
from settings import Settings
from store.models import Attachment, ChatMessageRow
from tests.api.test_chat import count, stored_files
from tests.api.test_tasks import assign, eventually, ready_case
from tests.files import HTML, PDF, zip_file
from tests.support import Actor, make_actor


async def linked(
    api: httpx.AsyncClient, creditor: Actor, partner: Actor, ops: Actor
) -> tuple[str, str]:
    """A case assigned to the partner, and the relationship that assignment linked."""
    cid = (await ready_case(api, creditor))["caseId"]
    assert (await assign(api, ops, cid, partner)).status_code == 200
    rid = str(relationship_id(creditor.org_id, partner.org_id))

    async def listed() -> bool:
        response = await api.get(f"/api/relationships/{rid}", headers=creditor.headers)
        return response.status_code == 200

    await eventually(listed)
    return rid, cid


async def upload(
    api: httpx.AsyncClient,
    actor: Actor,
    path: str,
    file: tuple[str, bytes, str] = ("a.pdf", PDF, "application/pdf"),
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await api.post(
        f"{path}/attachments", files={"file": file}, headers={**actor.headers, **(headers or {})}
    )


async def messages(api: httpx.AsyncClient, actor: Actor, rid: str) -> list[dict[str, Any]]:
    response = await api.get(
        f"/api/relationships/{rid}/chats", params={"pageSize": 100}, headers=actor.headers
    )
    assert response.status_code == 200, response.text
    return list(response.json()["chats"])


def error_fields(response: httpx.Response) -> list[str]:
    return [e["field"] for e in response.json().get("errors", [])]


async def test_pair_shares_files_in_the_relationship_chat_and_nobody_else_sees_them(
    api: httpx.AsyncClient,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    rid, cid = await linked(api, creditor, partner, ops)
    pair = f"/api/relationships/{rid}"

    # Upload first, then attach by id.
    uploaded = await upload(api, partner, pair, ("Aftale å.pdf", PDF, "application/pdf"))
    assert uploaded.status_code == 201, uploaded.text
    file = uploaded.json()
    assert {k: file[k] for k in ("filename", "contentType", "size")} == {
        "filename": "Aftale å.pdf",
        "contentType": "application/pdf",
        "size": len(PDF),
    }
    assert uploaded.headers["location"] == f"{pair}/attachments/{file['id']}"
    async with sessions() as session:
        row = await session.get(Attachment, uuid.UUID(file["id"]))
    assert row is not None
    assert (row.case_id, row.relationship_id, row.partner_id, row.org_id) == (
        None,
        uuid.UUID(rid),
        partner.org_id,
        partner.org_id,
    )

    # The creditor cannot send the partner's file as its own.
    borrowed = await api.post(
        f"{pair}/chats",
        json={"message": "Mine now", "attachmentIds": [file["id"]]},
        headers=creditor.headers,
    )
    assert (borrowed.status_code, error_fields(borrowed)) == (422, ["attachmentIds[0]"])
    posted = await api.post(
        f"{pair}/chats",
        json={"message": "The framework agreement", "attachmentIds": [file["id"]]},
        headers=partner.headers,
    )
    assert posted.status_code == 201, posted.text
    assert posted.json()["attachments"] == [file]
    assert (posted.json()["relationshipId"], posted.json()["caseId"]) == (rid, None)

    # The other side reads the message with its file and downloads the same bytes; so does ops.
    [listed] = await messages(api, creditor, rid)
    assert listed["attachments"] == [file]
    download_path = f"{pair}/attachments/{file['id']}"
    for reader in (creditor, partner, ops):
        download = await api.get(download_path, headers=reader.headers)
        assert download.status_code == 200, download.text
        assert download.content == PDF
        assert download.headers["content-type"] == "application/pdf"
        assert "filename*=UTF-8''Aftale%20%C3%A5.pdf" in download.headers["content-disposition"]

    # Files sent with the message (multipart), this time from the creditor.
    with_files = await api.post(
        f"{pair}/chats",
        data={"message": "Our price list"},
        files=[("files", ("prices.csv", b"item;price\nletter;10\n", "text/csv"))],
        headers=creditor.headers,
    )
    assert with_files.status_code == 201, with_files.text
    [sent] = with_files.json()["attachments"]
    got = await api.get(f"{pair}/attachments/{sent['id']}", headers=partner.headers)
    assert (got.status_code, got.content) == (200, b"item;price\nletter;10\n")
    assert [len(m["attachments"]) for m in await messages(api, partner, rid)] == [1, 1]

    # A third organisation gets 404, whatever its role; ops upload nothing.
    for outsider in (
        await make_actor(sessions, OrgKind.PARTNER),
        await make_actor(sessions, OrgKind.CREDITOR),
    ):
        assert (await api.get(download_path, headers=outsider.headers)).status_code == 404
        assert (await upload(api, outsider, pair)).status_code == 404
    by_ops = await upload(api, ops, pair)
    assert (by_ops.status_code, by_ops.json()["code"]) == (403, "forbidden")
    unknown = await api.get(f"{pair}/attachments/{uuid.uuid4()}", headers=creditor.headers)
    assert unknown.status_code == 404

    # A relationship file is not a case file, and the other way round.
    for reader in (creditor, partner, ops):
        through_case = await api.get(
            f"/api/cases/{cid}/attachments/{file['id']}", headers=reader.headers
        )
        assert through_case.status_code == 404
    on_case = await upload(api, partner, f"/api/cases/{cid}")
    assert on_case.status_code == 201, on_case.text
    case_file = on_case.json()["id"]
    in_pair_chat = await api.post(
        f"{pair}/chats",
        json={"message": "From the case", "attachmentIds": [case_file]},
        headers=partner.headers,
    )
    assert (in_pair_chat.status_code, error_fields(in_pair_chat)) == (422, ["attachmentIds[0]"])
    assert (
        await api.get(f"{pair}/attachments/{case_file}", headers=partner.headers)
    ).status_code == (404)
    in_case_chat = await api.post(
        f"/api/cases/{cid}/chats",
        json={"message": "From the pair", "attachmentIds": [file["id"]]},
        headers=partner.headers,
    )
    assert (in_case_chat.status_code, error_fields(in_case_chat)) == (422, ["attachmentIds[0]"])

    # Nor is it a file of another relationship of the same creditor.
    rival = await make_actor(sessions, OrgKind.PARTNER)
    other_rid, _ = await linked(api, creditor, rival, ops)
    other = await upload(api, creditor, f"/api/relationships/{other_rid}")
    assert other.status_code == 201, other.text
    crossed = await api.post(
        f"{pair}/chats",
        json={"message": "Meant for the rival", "attachmentIds": [other.json()["id"]]},
        headers=creditor.headers,
    )
    assert (crossed.status_code, error_fields(crossed)) == (422, ["attachmentIds[0]"])
    wrong_pair = await api.get(f"{pair}/attachments/{other.json()['id']}", headers=ops.headers)
    assert wrong_pair.status_code == 404
    assert (await api.get(download_path, headers=rival.headers)).status_code == 404

    assert len(await messages(api, creditor, rid)) == 2
    assert await count(sessions, Attachment) == 4
    assert len(stored_files(settings)) == 4


async def test_relationship_upload_over_the_limit_or_refused_stores_nothing(
    api: httpx.AsyncClient,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    rid, cid = await linked(api, creditor, partner, ops)
    pair = f"/api/relationships/{rid}"
    settings.attachment_max_bytes = 1024  # the app reads its limits from these settings

    just_over = await upload(api, partner, pair, ("big.pdf", b"x" * 1025, "application/pdf"))
    assert (just_over.status_code, just_over.json()["code"]) == (413, "attachment_too_large")
    assert just_over.json()["maxBytes"] == 1024
    huge = await upload(api, creditor, pair, ("huge.pdf", b"x" * 200_000, "application/pdf"))
    assert huge.status_code == 413
    in_message = await api.post(
        f"{pair}/chats",
        data={"message": "See attached"},
        files=[("files", ("big.pdf", b"x" * 2048, "application/pdf"))],
        headers=partner.headers,
    )
    assert (in_message.status_code, in_message.json()["code"]) == (413, "attachment_too_large")
    wrong_type = await upload(api, partner, pair, ("tool.exe", b"MZ", "application/x-msdownload"))
    assert (wrong_type.status_code, wrong_type.json()["code"]) == (415, "unsupported_media_type")
    as_text = await api.post(
        f"{pair}/attachments",
        content=b"not a form",
        headers={**partner.headers, "Content-Type": "text/plain"},
    )
    assert as_text.status_code == 415

    # A message refused for a bad attachment id keeps none of the files sent with it.
    case_file = await upload(api, partner, f"/api/cases/{cid}")
    assert case_file.status_code == 201, case_file.text
    refused = await api.post(
        f"{pair}/chats",
        data={"message": "Both", "attachmentIds": [case_file.json()["id"]]},
        files=[("files", ("small.pdf", PDF, "application/pdf"))],
        headers=partner.headers,
    )
    assert (refused.status_code, error_fields(refused)) == (422, ["attachmentIds[0]"])

    async with sessions() as session:
        owners = (
            await session.execute(select(Attachment.case_id, Attachment.relationship_id))
        ).all()
    assert owners == [(uuid.UUID(cid), None)], "only the case file"
    assert len(stored_files(settings)) == 1
    assert await count(sessions, ChatMessageRow) == 0


async def test_relationship_upload_is_judged_by_its_bytes_not_its_declared_type(
    api: httpx.AsyncClient,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    rid, _ = await linked(api, creditor, partner, ops)
    pair = f"/api/relationships/{rid}"

    disguised = await upload(api, creditor, pair, ("contract.pdf", HTML, "application/pdf"))
    assert disguised.status_code == 415, disguised.text
    assert {k: disguised.json()[k] for k in ("code", "declaredType", "detectedType")} == {
        "code": "unsupported_media_type",
        "declaredType": "application/pdf",
        "detectedType": "text/html",
    }
    unlisted = await upload(api, partner, pair, ("bundle", zip_file("a.txt"), ""))
    assert (unlisted.status_code, unlisted.json()["detectedType"]) == (415, "application/zip")
    in_message = await api.post(
        f"{pair}/chats",
        data={"message": "Our contract"},
        files=[("files", ("contract.pdf", HTML, "application/pdf"))],
        headers=creditor.headers,
    )
    assert in_message.status_code == 415
    assert await count(sessions, Attachment) == 0
    assert await count(sessions, ChatMessageRow) == 0
    assert stored_files(settings) == []

    real = await upload(api, creditor, pair, ("contract.pdf", PDF, "application/pdf"))
    assert (real.status_code, real.json()["contentType"]) == (201, "application/pdf")


async def test_relationship_upload_with_the_same_idempotency_key_stores_once(
    api: httpx.AsyncClient,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    rid, _ = await linked(api, creditor, partner, ops)
    pair = f"/api/relationships/{rid}"
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await upload(api, creditor, pair, headers=key)
    again = await upload(api, creditor, pair, headers=key)
    assert (first.status_code, again.status_code) == (201, 201), again.text
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"

    post_key = {"Idempotency-Key": str(uuid.uuid4())}
    for _ in range(2):
        with_file = await api.post(
            f"{pair}/chats",
            data={"message": "Once, with a file"},
            files=[("files", ("b.pdf", PDF, "application/pdf"))],
            headers={**partner.headers, **post_key},
        )
        assert with_file.status_code == 201, with_file.text
    assert [m["message"] for m in await messages(api, creditor, rid)] == ["Once, with a file"]
    assert await count(sessions, Attachment) == 2
    assert len(stored_files(settings)) == 2
