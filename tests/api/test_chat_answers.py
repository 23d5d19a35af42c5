"""What a chat post answers: the message as the chat lists it, built from the update's result
(api/chat_posts.py ``posted``, store/chat.py ``posted_message``) rather than read back."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.chat import relationship_id
from store.db import transaction
from store.models import IdempotencyRecord
from tests.api.test_chat import chats, post_chat
from tests.api.test_status import in_collection
from tests.files import PDF
from tests.support import Actor, make_actor


async def test_a_posted_message_answers_as_the_chat_lists_it(
    api: httpx.AsyncClient, creditor: Actor, partner: Actor, ops: Actor
) -> None:
    cid = (await in_collection(api, creditor, partner, ops))["caseId"]
    uploaded = await api.post(
        f"/api/cases/{cid}/attachments",
        files={"file": ("notes.txt", b"call notes", "text/plain")},
        headers=creditor.headers,
    )
    assert uploaded.status_code == 201, uploaded.text
    # A file named by id and one uploaded with the message, in that order.
    posted = await api.post(
        f"/api/cases/{cid}/chats",
        data={"message": "Both files", "attachmentIds": uploaded.json()["id"]},
        files=[("files", ("letter.pdf", PDF, "application/pdf"))],
        headers={**creditor.headers, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert posted.status_code == 201, posted.text
    answer = posted.json()
    assert [a["filename"] for a in answer["attachments"]] == ["notes.txt", "letter.pdf"]
    assert answer["user"] == {
        "id": str(creditor.principal.user_id),
        "firstName": None,
        "lastName": None,
        "email": creditor.principal.user_email,
        "name": None,
    }
    assert (answer["role"], answer["roleLabel"], answer["isSeen"]) == (
        "Creditor",
        "Creditor",
        False,
    )
    [listed] = await chats(api, creditor, cid)
    assert answer == listed

    pair = f"/api/relationships/{relationship_id(creditor.org_id, partner.org_id)}/chats"
    general = await api.post(pair, json={"message": "Hello"}, headers=partner.headers)
    assert general.status_code == 201, general.text
    [listed] = (await api.get(pair, headers=partner.headers)).json()["chats"]
    assert general.json() == listed


async def test_a_retried_post_the_workflow_had_recorded_answers_its_first_message_and_author(
    api: httpx.AsyncClient,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A post whose stored answer is gone (as after an answer lost to a 503) is sent again by
    another user of the organisation with the same key: the workflow recorded it once, and the
    answer names the first author, looked up, not the caller."""
    cid = (await in_collection(api, creditor, partner, ops))["caseId"]
    colleague = await make_actor(sessions, partner.principal.role, org_id=partner.org_id)
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await post_chat(api, partner, cid, "Once", headers=key)
    assert first.status_code == 201, first.text
    async with transaction(sessions) as session:
        await session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.org_id == partner.org_id)
        )
    again = await post_chat(api, colleague, cid, "Once", headers=key)
    assert again.status_code == 201, again.text
    assert "Idempotent-Replayed" not in again.headers  # answered by the workflow, not replayed
    assert again.json() == first.json()
    assert again.json()["user"]["id"] == str(partner.principal.user_id)
    assert [m["id"] for m in await chats(api, creditor, cid)] == [first.json()["id"]]
