"""The case chat in the portal: a creditor follows ReplyToChat, replies with a file, and the task
leaves the Tasks menu; the partner downloads the file; a reply needs its CSRF token; a
refused reply keeps what was typed."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.enums import OrgKind
from tests.api.test_case_work import open_task
from tests.api.test_tasks import eventually, tasks_of
from tests.portal.support import csrf_of, in_collection, sign_in, with_password
from tests.support import Actor, make_actor, reads

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


async def reply(
    portal: httpx.AsyncClient, case_id: str, message: str, **extra: Any
) -> httpx.Response:
    page = await portal.get(f"/portal/cases/{case_id}/chat")
    data = {"csrf_token": csrf_of(page), "threadType": "Invoice Chat", "message": message}
    return await portal.post(
        f"/portal/cases/{case_id}/chat",
        data={**data, **extra.get("data", {})},
        files=extra.get("files"),
    )


async def test_a_creditor_follows_reply_to_chat_replies_with_a_file_and_the_task_is_solved(
    live_portal: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    case_id = await in_collection(live_portal, creditor, partner, ops)
    asked = await live_portal.post(
        f"/api/cases/{case_id}/chats",
        json={"message": "Can you send the signed order?"},
        headers=partner.headers,
    )
    assert asked.status_code == 201, asked.text

    task = await open_task(live_portal, creditor, "ReplyToChat")
    await sign_in(live_portal, await with_password(sessions, creditor))
    page = await live_portal.get("/portal" + urlsplit(task["solutionUrl"]).path)
    assert page.status_code == 200 and "Can you send the signed order?" in page.text

    sent = await reply(
        live_portal,
        case_id,
        "Here it is.",
        files=[("files", ("order.pdf", PDF, "application/pdf"))],
    )

    assert sent.status_code == 303, sent.text
    assert await tasks_of(live_portal, creditor, status="Open", type="ReplyToChat") == []
    menu = await live_portal.get("/portal/tasks")
    assert task["id"] not in menu.text
    chat = await live_portal.get(sent.headers["location"])
    assert "Your message is sent" in chat.text and "order.pdf" in chat.text

    # The partner downloads the file through the portal; another creditor cannot.
    found = re.search(r'href="/portal/cases/([^"]+/attachments/[^"]+)"', chat.text)
    assert found, chat.text
    link = found.group(1)
    await sign_in(live_portal, await with_password(sessions, partner))
    got = await live_portal.get("/portal/cases/" + link)
    assert got.status_code == 200 and got.content == PDF
    stranger = await make_actor(sessions, OrgKind.CREDITOR)
    await sign_in(live_portal, await with_password(sessions, stranger))
    assert (await live_portal.get("/portal/cases/" + link)).status_code == 404


async def test_a_reply_without_its_token_is_refused_and_a_refused_reply_keeps_the_text(
    live_portal: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    case_id = await in_collection(live_portal, creditor, partner, ops)
    await sign_in(live_portal, await with_password(sessions, creditor))
    forged = await live_portal.post(
        f"/portal/cases/{case_id}/chat",
        data={"threadType": "Invoice Chat", "message": "hi"},
        files=[("files", ("a.txt", b"x", "text/plain"))],
    )
    assert forged.status_code == 403

    wrong_type = await reply(
        live_portal,
        case_id,
        "Look at this",
        files=[("files", ("x.exe", b"MZ\x90\x00", "application/x-msdownload"))],
    )
    assert wrong_type.status_code == 415, wrong_type.text
    assert "Reply in Invoice Chat" in wrong_type.text  # the chat page, with the reason
    no_partner = await reply(
        live_portal, case_id, "Which partner?", data={"threadType": "Lead Chat"}
    )
    assert no_partner.status_code == 422, no_partner.text
    assert "Which partner?" in no_partner.text
    listed = await live_portal.get(f"/api/cases/{case_id}/chats", headers=creditor.headers)
    assert listed.json() == []


async def test_ops_read_the_chat_without_a_reply_form(
    live_portal: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    case_id = await in_collection(live_portal, creditor, partner, ops)
    await sign_in(live_portal, await with_password(sessions, ops))
    page = await live_portal.get(f"/portal/cases/{case_id}/chat")
    assert page.status_code == 200 and 'enctype="multipart/form-data"' not in page.text
    refused = await reply(live_portal, case_id, "ops should not write")
    assert refused.status_code == 403


async def test_the_relationship_chat_is_listed_and_its_reply_task_is_solved_in_the_portal(
    live_portal: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    await in_collection(live_portal, creditor, partner, ops)

    async def pair() -> dict[str, Any] | None:
        got = await live_portal.get("/api/relationships", headers=partner.headers)
        return got.json()["relationships"][0] if got.json()["relationships"] else None

    relationship = await eventually(pair)
    asked = await live_portal.post(
        f"/api/relationships/{relationship['id']}/chats",
        json={"message": "Shall we talk about the new batch?"},
        headers=partner.headers,
    )
    assert asked.status_code == 201, asked.text

    task = await open_task(live_portal, creditor, "ReplyToChat")
    await sign_in(live_portal, await with_password(sessions, creditor))
    listed = await live_portal.get("/portal/relationships")
    assert partner.principal.org_name in listed.text
    page_path = "/portal" + urlsplit(task["solutionUrl"]).path
    assert page_path == f"/portal/relationships/{relationship['id']}/chat"
    page = await live_portal.get(page_path)
    assert "Shall we talk about the new batch?" in page.text

    sent = await live_portal.post(
        page_path, data={"csrf_token": csrf_of(page), "message": "Yes, Monday."}
    )

    assert sent.status_code == 303, sent.text
    assert await tasks_of(live_portal, creditor, status="Open", type="ReplyToChat") == []
    stranger = await make_actor(sessions, OrgKind.CREDITOR)
    await sign_in(live_portal, await with_password(sessions, stranger))
    assert (await live_portal.get(page_path)).status_code == 404


async def test_the_chat_task_and_account_pages_read_a_fixed_number_of_statements(
    live_portal: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    case_id = await in_collection(live_portal, creditor, partner, ops)

    async def say(n: int) -> None:
        for i in range(n):
            said = await live_portal.post(
                f"/api/cases/{case_id}/chats", json={"message": f"m{i}"}, headers=partner.headers
            )
            assert said.status_code == 201, said.text

    await say(1)
    task = await open_task(live_portal, creditor, "ReplyToChat")
    await sign_in(live_portal, await with_password(sessions, creditor))
    pages = [f"/portal/cases/{case_id}/chat", f"/portal/tasks/{task['id']}", "/portal/account"]
    few = []
    for path in pages:
        with reads() as seen:
            assert (await live_portal.get(path)).status_code == 200
        few.append(len(seen))
    await say(6)
    many = []
    for path in pages:
        with reads() as seen:
            assert (await live_portal.get(path)).status_code == 200
        many.append(len(seen))
    assert many == few
