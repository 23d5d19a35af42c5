"""A chat post as Debitura's ``SendChatRequest`` sends it (issue 12 A4): ``message`` plus
``userEmail`` or ``userId`` naming the user of the caller's organisation who writes; anyone
else is refused and nothing is posted. Each message carries Debitura's ``ChatDto`` names."""

from __future__ import annotations

import uuid

import httpx
from debitura_debt_collection.models import (
    DebituraWebExternalApiContractsV1ChatsChatDto as ChatDto,
)
from debitura_debt_collection.models import (
    DebituraWebExternalApiContractsV1UsersUserRelationDto as UserRelationDto,
)
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.chat import relationship_id
from domain.enums import OrgKind
from settings import Settings
from store.db import transaction
from store.models import ChatMessageRow, User
from tests.api.test_chat import chats, post_chat, stored_files
from tests.api.test_status import in_collection
from tests.api.test_tasks import eventually, tasks_of
from tests.support import Actor, make_actor


async def _named(sessions: async_sessionmaker[AsyncSession], actor: Actor, name: str) -> None:
    async with transaction(sessions) as session:
        await session.execute(
            update(User).where(User.id == actor.principal.user_id).values(name=name)
        )


async def test_a_post_names_its_writer_by_debituras_user_email_or_user_id(
    api: httpx.AsyncClient,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cid = (await in_collection(api, creditor, partner, ops))["caseId"]
    colleague = await make_actor(sessions, OrgKind.CREDITOR, org_id=creditor.org_id)
    await _named(sessions, colleague, "Anne Marie Jensen")
    email = colleague.principal.user_email

    # The key's user posts; the message is the colleague's (e-mail compared without case).
    by_email = await post_chat(api, creditor, cid, "Sent for Anne", userEmail=email.upper())
    assert by_email.status_code == 201, by_email.text
    assert by_email.json()["user"] == {
        "id": str(colleague.principal.user_id),
        "firstName": "Anne Marie",
        "lastName": "Jensen",
        "email": email,
        "name": "Anne Marie Jensen",
    }
    by_id = await post_chat(api, creditor, cid, "By id", userId=str(colleague.principal.user_id))
    assert by_id.status_code == 201, by_id.text
    both = await post_chat(
        api, creditor, cid, "Both", userEmail=email, userId=str(colleague.principal.user_id)
    )
    assert both.status_code == 201, both.text
    mine = await post_chat(api, creditor, cid, "Nobody named: the key's user")
    assert mine.status_code == 201, mine.text

    listed = await chats(api, partner, cid)
    assert [(m["message"], m["user"]["id"]) for m in listed] == [
        ("Sent for Anne", str(colleague.principal.user_id)),
        ("By id", str(colleague.principal.user_id)),
        ("Both", str(colleague.principal.user_id)),
        ("Nobody named: the key's user", str(creditor.principal.user_id)),
    ]
    assert listed[0] == {**by_email.json(), "isSeen": False}
    # The relationship chat takes the same fields.
    pair = f"/api/relationships/{relationship_id(creditor.org_id, partner.org_id)}/chats"
    general = await api.post(
        pair, json={"message": "Hello", "userEmail": email}, headers=creditor.headers
    )
    assert general.status_code == 201, general.text
    assert general.json()["user"]["id"] == str(colleague.principal.user_id)


async def test_a_writer_outside_the_callers_organisation_is_refused_and_nothing_is_posted(
    api: httpx.AsyncClient,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    cid = (await in_collection(api, creditor, partner, ops))["caseId"]
    stranger = await make_actor(sessions, OrgKind.CREDITOR)  # another creditor's user
    colleague = await make_actor(sessions, OrgKind.CREDITOR, org_id=creditor.org_id)
    gone = await make_actor(sessions, OrgKind.CREDITOR, org_id=creditor.org_id)
    async with transaction(sessions) as session:
        await session.execute(
            update(User).where(User.id == gone.principal.user_id).values(active=False)
        )

    refused = [
        ({"userEmail": stranger.principal.user_email}, "userEmail", "unknown_sender"),
        ({"userEmail": partner.principal.user_email}, "userEmail", "unknown_sender"),
        ({"userEmail": "nobody@example.com"}, "userEmail", "unknown_sender"),
        ({"userEmail": gone.principal.user_email}, "userEmail", "unknown_sender"),
        ({"userId": str(stranger.principal.user_id)}, "userId", "unknown_sender"),
        ({"userId": str(uuid.uuid4())}, "userId", "unknown_sender"),
        (
            {
                "userEmail": colleague.principal.user_email,
                "userId": str(creditor.principal.user_id),
            },
            "userId",
            "sender_mismatch",
        ),
    ]
    for sender, field, code in refused:
        answer = await post_chat(api, creditor, cid, "Should not be posted", **sender)
        assert answer.status_code == 422, (sender, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert (answer.json()["code"], answer.json()["errors"][0]["field"]) == (code, field)
    # As multipart, with a file: refused the same, and the file is not kept.
    form = await api.post(
        f"/api/cases/{cid}/chats",
        data={"message": "With a file", "userEmail": stranger.principal.user_email},
        files=[("files", ("notes.txt", b"call notes", "text/plain"))],
        headers=creditor.headers,
    )
    assert form.status_code == 422, form.text
    assert form.json()["code"] == "unknown_sender"
    assert stored_files(settings) == []

    assert await chats(api, creditor, cid) == []
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(ChatMessageRow)) == 0
    assert await tasks_of(api, partner, type="NewMessage") == []


async def test_each_message_carries_debituras_chat_dto_names(
    api: httpx.AsyncClient,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cid = (await in_collection(api, creditor, partner, ops))["caseId"]
    await _named(sessions, partner, "Pia")
    posted = await post_chat(api, partner, cid, "The debtor called back.")
    assert posted.status_code == 201, posted.text
    [message] = await eventually(lambda: chats(api, creditor, cid))
    chat_dto = {f.alias or name for name, f in ChatDto.model_fields.items()}
    user_dto = {f.alias or name for name, f in UserRelationDto.model_fields.items()}
    assert chat_dto - set(message) == set()
    assert list(message)[: len(chat_dto)] == [
        "id",
        "dateCreated",
        "dateUpdated",
        "role",
        "roleLabel",
        "message",
        "isSeen",
        "user",
    ], "Debitura's fields first, caseloop's after them"
    assert {"threadType", "partnerId", "attachments"} <= set(message)
    assert message["dateUpdated"] == message["dateCreated"], "a message is never edited"
    assert (message["role"], message["roleLabel"]) == ("Partner", "Partner")
    # Debitura's user has dateCreated and dateUpdated too: caseloop's chat shows no user dates.
    assert user_dto - set(message["user"]) == {"dateCreated", "dateUpdated"}
    assert (message["user"]["firstName"], message["user"]["lastName"]) == ("Pia", None)
    timeline = (await api.get(f"/api/cases/{cid}/timeline", headers=creditor.headers)).json()
    [item] = [i for i in timeline["items"] if i["type"] == "message"]
    assert chat_dto - set(item) == set() and item["user"] == message["user"]
