"""The communication center through the API: case chats and their tasks, the relationship chat,
attachments, notes and calls, and the case timeline."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.calendar import add_business_days
from domain.chat import MAX_MESSAGE_CHARS, relationship_id
from domain.enums import OrgKind
from settings import Settings
from store.models import Attachment, CaseNote, ChatMessageRow
from tests.api.test_status import in_collection, move
from tests.api.test_tasks import assign, eventually, ready_case, tasks_of
from tests.files import HTML, PDF, PNG, ole_file, ooxml, zip_file
from tests.support import Actor, make_actor

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
ZIP = "application/zip"


async def post_chat(
    api: httpx.AsyncClient,
    actor: Actor,
    case_id: str,
    message: str,
    *,
    headers: dict[str, str] | None = None,
    path: str | None = None,
    **more: Any,
) -> httpx.Response:
    return await api.post(
        path or f"/api/cases/{case_id}/chats",
        json={"message": message, **more},
        headers={**actor.headers, **(headers or {})},
    )


async def chats(
    api: httpx.AsyncClient, actor: Actor, case_id: str, **params: Any
) -> list[dict[str, Any]]:
    response = await api.get(f"/api/cases/{case_id}/chats", params=params, headers=actor.headers)
    assert response.status_code == 200, response.text
    return list(response.json())


async def task(api: httpx.AsyncClient, actor: Actor, task_id: str) -> dict[str, Any]:
    response = await api.get(f"/api/tasks/{task_id}", headers=actor.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def count(sessions: async_sessionmaker[AsyncSession], model: Any) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(model)) or 0


def stored_files(settings: Settings) -> list[Path]:
    directory = settings.blob_directory
    return [p for p in directory.rglob("*") if p.is_file()] if directory.exists() else []


def due_in_two_business_days(message: dict[str, Any], actor: Actor) -> str:
    created = dt.datetime.fromisoformat(message["dateCreated"])
    due = add_business_days(
        created, 2, country=actor.principal.country, timezone=actor.principal.timezone
    )
    return due.isoformat().replace("+00:00", "Z")


def same_moment(a: str, b: str) -> bool:
    return dt.datetime.fromisoformat(a) == dt.datetime.fromisoformat(b)


async def test_partner_message_raises_reply_to_chat_and_the_reply_solves_it(
    api: httpx.AsyncClient, creditor: Actor, partner: Actor, ops: Actor
) -> None:
    cid = (await in_collection(api, creditor, partner, ops))["caseId"]

    posted = await post_chat(api, partner, cid, "  The debtor called back.  ")
    assert posted.status_code == 201, posted.text
    first = posted.json()
    assert first["message"] == "The debtor called back."
    assert (first["threadType"], first["partnerId"], first["caseId"]) == (
        "Invoice Chat",
        str(partner.org_id),
        cid,
    )
    assert (first["role"], first["roleLabel"], first["isSeen"]) == ("Partner", "Partner", False)
    assert first["user"]["id"] == str(partner.principal.user_id)
    assert first["user"]["email"]
    assert first["attachments"] == []

    [reply] = await eventually(lambda: tasks_of(api, creditor, type="ReplyToChat", status="Open"))
    assert reply["action"] == {
        "method": "POST",
        "path": f"/api/cases/{cid}/chats",
        "body": {"threadType": "Invoice Chat", "partnerId": str(partner.org_id)},
        "needsMessage": True,
    }
    assert (reply["caseId"], reply["relationshipId"]) == (cid, None)
    assert same_moment(reply["deadline"], due_in_two_business_days(first, creditor))
    assert await tasks_of(api, partner, type="ReplyToChat") == [], "the creditor's task only"

    # The creditor answers through the task's own action.
    answered = await api.request(
        reply["action"]["method"],
        reply["action"]["path"],
        json={"message": "Thanks, please send the reminder."},
        headers=creditor.headers,
    )
    assert answered.status_code == 201, answered.text
    assert answered.json()["role"] == "Creditor"
    solved = await task(api, creditor, reply["id"])
    assert (solved["status"], solved["resolvedBy"]["kind"]) == ("Solved", "user")
    [new_message] = await eventually(
        lambda: tasks_of(api, partner, type="NewMessage", status="Open")
    )
    assert new_message["action"] == reply["action"]
    assert same_moment(new_message["deadline"], due_in_two_business_days(answered.json(), partner))

    # The creditor's reply is the first message's "seen".
    listed = await chats(api, partner, cid)
    assert [m["isSeen"] for m in listed] == [True, False]
    assert [m["role"] for m in listed] == ["Partner", "Creditor"]

    # A burst from the partner: one open ReplyToChat, not five; the partner's NewMessage is solved.
    for n in range(5):
        assert (await post_chat(api, partner, cid, f"Update {n}")).status_code == 201
    open_replies = await tasks_of(api, creditor, type="ReplyToChat", status="Open")
    assert len(open_replies) == 1
    assert await tasks_of(api, partner, type="NewMessage", status="Open") == []
    listed = await chats(api, creditor, cid)
    assert len(listed) == 7
    assert [m["message"] for m in listed[2:]] == [f"Update {n}" for n in range(5)], "oldest first"


async def test_outsiders_get_404_and_only_the_working_partner_logs_notes_and_calls(
    api: httpx.AsyncClient,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cid = (await in_collection(api, creditor, partner, ops))["caseId"]
    stranger = await make_actor(sessions, OrgKind.PARTNER)

    assert (await api.get(f"/api/cases/{cid}/chats", headers=stranger.headers)).status_code == 404
    refused = await post_chat(api, stranger, cid, "Hello?")
    assert (refused.status_code, refused.json()["code"]) == (404, "not_found")

    note = await api.post(f"/api/cases/{cid}/notes", json={"note": "x"}, headers=creditor.headers)
    assert (note.status_code, note.json()["code"]) == (403, "forbidden")
    assert "Only the partner working the case logs notes and calls" in note.json()["detail"]
    call = {"durationSeconds": 60, "outcome": "Reached"}
    by_creditor = await api.post(f"/api/cases/{cid}/calls", json=call, headers=creditor.headers)
    assert (by_creditor.status_code, by_creditor.json()["code"]) == (403, "forbidden")
    by_ops = await api.post(f"/api/cases/{cid}/notes", json={"note": "x"}, headers=ops.headers)
    assert by_ops.status_code == 403
    by_stranger = await api.post(
        f"/api/cases/{cid}/notes", json={"note": "x"}, headers=stranger.headers
    )
    assert by_stranger.status_code == 404

    # Ops read but speak for nobody; bad messages are refused.
    assert (await post_chat(api, ops, cid, "From ops")).status_code == 403
    for bad in ("", "   ", "x" * (MAX_MESSAGE_CHARS + 1)):
        response = await post_chat(api, partner, cid, bad)
        assert (response.status_code, response.json()["code"]) == (422, "validation_failed")
        assert response.json()["errors"][0]["field"] == "message"
    general = await post_chat(api, creditor, cid, "Hi", threadType="General")
    assert (general.status_code, general.json()["errors"][0]["field"]) == (422, "threadType")
    as_text = await api.post(
        f"/api/cases/{cid}/chats",
        content=b"Hello",
        headers={**partner.headers, "Content-Type": "text/plain"},
    )
    assert (as_text.status_code, as_text.json()["code"]) == (415, "unsupported_media_type")
    foreign = await post_chat(api, partner, cid, "Look", attachmentIds=[str(uuid.uuid4())])
    assert (foreign.status_code, foreign.json()["errors"][0]["field"]) == (
        422,
        "attachmentIds[0]",
    )

    assert await count(sessions, CaseNote) == 0
    assert await count(sessions, ChatMessageRow) == 0
    for actor in (creditor, partner, ops):
        listed = await api.get(f"/api/cases/{cid}/notes", headers=actor.headers)
        assert listed.json()["notes"] == []
        assert await chats(api, actor, cid) == []

    # The partner working the case logs both; calls are checked.
    for bad_call in (
        {"durationSeconds": -1, "outcome": "Reached"},
        {"durationSeconds": 86_401, "outcome": "Reached"},
        {"durationSeconds": 60, "outcome": "Maybe"},
    ):
        response = await api.post(f"/api/cases/{cid}/calls", json=bad_call, headers=partner.headers)
        assert response.status_code == 422, bad_call
    logged = await api.post(
        f"/api/cases/{cid}/calls",
        json={"durationSeconds": 95, "outcome": "Promise to pay", "note": "Pays Friday"},
        headers=partner.headers,
    )
    assert logged.status_code == 201, logged.text
    assert {k: logged.json()[k] for k in ("type", "durationSeconds", "outcome", "note")} == {
        "type": "call",
        "durationSeconds": 95,
        "outcome": "Promise to pay",
        "note": "Pays Friday",
    }
    seen = (await api.get(f"/api/cases/{cid}/notes", headers=creditor.headers)).json()["notes"]
    assert [n["id"] for n in seen] == [logged.json()["id"]]


async def test_a_case_without_a_partner_has_no_invoice_chat_yet(
    api: httpx.AsyncClient, creditor: Actor
) -> None:
    cid = (await ready_case(api, creditor))["caseId"]
    early = await post_chat(api, creditor, cid, "Anyone there?")
    assert (early.status_code, early.json()["code"]) == (409, "invalid_transition")
    assert await chats(api, creditor, cid) == [], "an empty thread lists nothing"


async def test_relationship_chat_raises_tasks_that_stay_off_the_case(
    api: httpx.AsyncClient,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    case = await ready_case(api, creditor)
    cid = case["caseId"]
    assert (await assign(api, ops, cid, partner)).status_code == 200

    async def pairs(actor: Actor) -> list[dict[str, Any]]:
        response = await api.get("/api/relationships", headers=actor.headers)
        assert response.status_code == 200, response.text
        return list(response.json()["relationships"])

    [pair] = await eventually(lambda: pairs(creditor))
    rid = pair["id"]
    assert rid == str(relationship_id(creditor.org_id, partner.org_id))
    assert pair["counterpart"] == {"id": str(partner.org_id), "name": partner.principal.org_name}
    [same] = await pairs(partner)
    assert same["counterpart"] == {
        "id": str(creditor.org_id),
        "name": creditor.principal.org_name,
    }
    assert [p["id"] for p in await pairs(ops)] == [rid]

    path = f"/api/relationships/{rid}/chats"
    posted = await api.post(path, json={"message": "General question"}, headers=partner.headers)
    assert posted.status_code == 201, posted.text
    message = posted.json()
    assert (message["threadType"], message["relationshipId"], message["caseId"]) == (
        "General",
        rid,
        None,
    )

    [reply] = await eventually(lambda: tasks_of(api, creditor, type="ReplyToChat", status="Open"))
    assert (reply["relationshipId"], reply["caseId"]) == (rid, None)
    assert reply["action"] == {"method": "POST", "path": path, "body": None, "needsMessage": True}
    assert same_moment(reply["deadline"], due_in_two_business_days(message, creditor))
    for actor in (creditor, partner):
        on_case = (await api.get(f"/api/cases/{cid}/tasks", headers=actor.headers)).json()
        assert not [t for t in on_case if t["type"] in ("ReplyToChat", "NewMessage")]
        assert all(t["relationshipId"] is None for t in on_case)

    answered = await api.post(
        reply["action"]["path"], json={"message": "Sure"}, headers=creditor.headers
    )
    assert answered.status_code == 201, answered.text
    assert (await task(api, creditor, reply["id"]))["status"] == "Solved"
    [new_message] = await eventually(
        lambda: tasks_of(api, partner, type="NewMessage", status="Open")
    )
    assert new_message["action"] == {
        "method": "POST",
        "path": path,
        "body": None,
        "needsMessage": True,
    }
    listed = (await api.get(path, headers=partner.headers)).json()
    assert [(m["role"], m["isSeen"]) for m in listed["chats"]] == [
        ("Partner", True),
        ("Creditor", False),
    ]
    assert (await api.get(path, headers=ops.headers)).status_code == 200
    assert (await api.post(path, json={"message": "ops"}, headers=ops.headers)).status_code == 403

    outsider = await make_actor(sessions, OrgKind.PARTNER)
    other_creditor = await make_actor(sessions, OrgKind.CREDITOR)
    for actor in (outsider, other_creditor):
        assert await pairs(actor) == []
        assert (await api.get(path, headers=actor.headers)).status_code == 404
        assert (await api.get(f"/api/relationships/{rid}", headers=actor.headers)).status_code == (
            404
        )
        intruding = await api.post(path, json={"message": "Hi"}, headers=actor.headers)
        assert intruding.status_code == 404
    assert len(listed["chats"]) == 2


async def test_timeline_merges_messages_notes_calls_and_status_changes_in_order(
    api: httpx.AsyncClient, creditor: Actor, partner: Actor, ops: Actor
) -> None:
    cid = (await in_collection(api, creditor, partner, ops))["caseId"]
    history = (await api.get(f"/api/cases/{cid}/history", headers=creditor.headers)).json()
    before = len(history["history"])

    assert (await post_chat(api, partner, cid, "Letter sent")).status_code == 201
    note = await api.post(
        f"/api/cases/{cid}/notes", json={"note": "Debtor disputes"}, headers=partner.headers
    )
    assert note.status_code == 201, note.text
    assert (await post_chat(api, creditor, cid, "Which part?")).status_code == 201
    call = await api.post(
        f"/api/cases/{cid}/calls",
        json={"durationSeconds": 300, "outcome": "Reached"},
        headers=partner.headers,
    )
    assert call.status_code == 201, call.text
    moved = await move(api, partner, cid, status="In Collection", subStatus="First reminder sent")
    assert moved.status_code == 200, moved.text

    response = await api.get(f"/api/cases/{cid}/timeline", headers=creditor.headers)
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [i["type"] for i in items] == ["statusChange"] * before + [
        "message",
        "note",
        "message",
        "call",
        "statusChange",
    ]
    stamps = [dt.datetime.fromisoformat(i["date"]) for i in items]
    assert stamps == sorted(stamps)
    assert items[before]["message"] == "Letter sent"
    assert items[before + 1]["note"] == "Debtor disputes"
    assert (items[before + 3]["durationSeconds"], items[before + 3]["outcome"]) == (300, "Reached")
    assert (items[-1]["status"], items[-1]["subStatus"]) == ("In Collection", "First reminder sent")
    assert response.json()["currentEngagementPhase"] == "Pre-legal"
    # (The creditor's view: a partner reads ops' assignment without its note; see
    # tests/api/test_security.py.)


async def test_attachment_over_the_limit_is_refused_and_nothing_is_stored(
    api: httpx.AsyncClient,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cid = (await in_collection(api, creditor, partner, ops))["caseId"]
    settings.attachment_max_bytes = 1024  # the app reads its limits from these settings
    url = f"/api/cases/{cid}/attachments"

    just_over = await api.post(
        url, files={"file": ("big.pdf", b"x" * 1025, "application/pdf")}, headers=partner.headers
    )
    assert (just_over.status_code, just_over.json()["code"]) == (413, "attachment_too_large")
    huge = await api.post(  # refused on its Content-Length, before reading the body
        url,
        files={"file": ("huge.pdf", b"x" * 200_000, "application/pdf")},
        headers=partner.headers,
    )
    assert huge.status_code == 413

    # Without a Content-Length (chunked), the bytes are counted as they arrive.
    boundary = uuid.uuid4().hex

    async def chunked() -> AsyncIterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="s.pdf"\r\n'
            "Content-Type: application/pdf\r\n\r\n"
        ).encode()
        for _ in range(20):
            yield b"x" * 10_000
        yield f"\r\n--{boundary}--\r\n".encode()

    streamed = await api.post(
        url,
        content=chunked(),
        headers={**partner.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert streamed.status_code == 413

    in_message = await api.post(
        f"/api/cases/{cid}/chats",
        data={"message": "See attached"},
        files=[("files", ("big.pdf", b"x" * 2048, "application/pdf"))],
        headers=partner.headers,
    )
    assert in_message.status_code == 413

    wrong_type = await api.post(
        url,
        files={"file": ("tool.exe", b"MZ" + b"\0" * 10, "application/x-msdownload")},
        headers=partner.headers,
    )
    assert (wrong_type.status_code, wrong_type.json()["code"]) == (415, "unsupported_media_type")
    unnamed = await api.post(
        url,
        files={"file": ("tool.exe", b"MZ", "application/octet-stream")},
        headers=partner.headers,
    )
    assert unnamed.status_code == 415, "a generic type is judged by the file name"

    assert await count(sessions, Attachment) == 0
    assert await count(sessions, ChatMessageRow) == 0
    assert stored_files(settings) == []


async def test_case_upload_is_judged_by_its_bytes_not_its_declared_type(
    api: httpx.AsyncClient,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cid = (await in_collection(api, creditor, partner, ops))["caseId"]
    url = f"/api/cases/{cid}/attachments"

    async def send(name: str, content: bytes, declared: str) -> httpx.Response:
        return await api.post(
            url, files={"file": (name, content, declared)}, headers=partner.headers
        )

    # (file, then the declared and the detected type the problem names: null when unknown)
    refused: dict[str, tuple[tuple[str, bytes, str], str | None, str | None]] = {
        "HTML as PDF": (("invoice.pdf", HTML, "application/pdf"), "application/pdf", "text/html"),
        "HTML as text": (("notes.txt", HTML, "text/plain"), "text/plain", "text/html"),
        "PNG as PDF": (("scan.pdf", PNG, "application/pdf"), "application/pdf", "image/png"),
        "a ZIP named .docx": (("letter.docx", zip_file("a.txt"), ""), DOCX, "application/zip"),
        "an unlisted type found in the bytes": (
            ("archive", zip_file("a.txt"), "application/octet-stream"),
            None,
            "application/zip",
        ),
        "an unlisted declared type": (("a.zip", zip_file("a.txt"), "application/zip"), ZIP, None),
        "a PowerPoint as Word": (
            ("deck.doc", ole_file("PowerPoint Document"), "application/msword"),
            "application/msword",
            "application/vnd.ms-powerpoint",
        ),
        "binary as CSV": (
            ("data.csv", b"\x00\x01\x02\xff" * 8, "text/csv"),
            "text/csv",
            "application/octet-stream",
        ),
    }
    for case, (file, declared, detected) in refused.items():
        response = await send(*file)
        assert response.status_code == 415, (case, response.text)
        problem = response.json()
        assert (problem["code"], problem["declaredType"], problem["detectedType"]) == (
            "unsupported_media_type",
            declared,
            detected,
        ), case
    with_message = await api.post(
        f"/api/cases/{cid}/chats",
        data={"message": "See attached"},
        files=[("files", ("invoice.pdf", HTML, "application/pdf"))],
        headers=partner.headers,
    )
    assert with_message.status_code == 415
    assert await count(sessions, Attachment) == 0
    assert await count(sessions, ChatMessageRow) == 0
    assert stored_files(settings) == []

    accepted = {
        "a real PDF": (("invoice.pdf", PDF, "application/pdf"), "application/pdf"),
        "a PNG named by nothing": (("scan", PNG, "application/octet-stream"), "image/png"),
        "a .docx": (("letter.docx", ooxml("word/document.xml"), DOCX), None),
        "an .xlsx by its name": (
            ("sheet.xlsx", ooxml("xl/workbook.xml"), "application/octet-stream"),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
        "a .doc": (("old.doc", ole_file("WordDocument"), "application/msword"), None),
        "an .xls": (("old.xls", ole_file("Workbook"), "application/vnd.ms-excel"), None),
        "an Outlook .msg": (
            ("mail.msg", ole_file("__substg1.0_0037001F"), "application/vnd.ms-outlook"),
            None,
        ),
        "a CSV that Windows calls Excel": (
            ("prices.csv", "vare;pris\nbrev;10\n".encode("cp1252"), "application/vnd.ms-excel"),
            "text/csv",
        ),
        "an .eml by its name": (
            ("mail.eml", b"From: a@example.com\r\nSubject: Hi\r\n\r\n<p>Hi</p>\r\n", ""),
            "message/rfc822",
        ),
    }
    for case, (file, stored) in accepted.items():
        response = await send(*file)
        assert response.status_code == 201, (case, response.text)
        assert response.json()["contentType"] == (stored or file[2]), case
    assert await count(sessions, Attachment) == len(accepted)


async def test_message_with_a_file_is_downloadable_by_its_parties_only(
    api: httpx.AsyncClient,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cid = (await in_collection(api, creditor, partner, ops))["caseId"]
    posted = await api.post(
        f"/api/cases/{cid}/chats",
        data={"message": "The signed letter"},
        files=[("files", ("Brev å.pdf", PDF, "application/pdf"))],
        headers=partner.headers,
    )
    assert posted.status_code == 201, posted.text
    [attachment] = posted.json()["attachments"]
    assert {k: attachment[k] for k in ("filename", "contentType", "size")} == {
        "filename": "Brev å.pdf",
        "contentType": "application/pdf",
        "size": len(PDF),
    }
    [listed] = await chats(api, creditor, cid)
    assert listed["attachments"] == [attachment]

    url = f"/api/cases/{cid}/attachments/{attachment['id']}"
    for reader in (creditor, partner, ops):
        download = await api.get(url, headers=reader.headers)
        assert download.status_code == 200, download.text
        assert download.content == PDF
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["content-disposition"].startswith("attachment;")
    assert "filename*=UTF-8''Brev%20%C3%A5.pdf" in download.headers["content-disposition"]
    stranger = await make_actor(sessions, OrgKind.PARTNER)
    assert (await api.get(url, headers=stranger.headers)).status_code == 404
    other_creditor = await make_actor(sessions, OrgKind.CREDITOR)
    assert (await api.get(url, headers=other_creditor.headers)).status_code == 404
    assert (
        await api.get(f"/api/cases/{cid}/attachments/{uuid.uuid4()}", headers=creditor.headers)
    ).status_code == 404

    # Uploaded first, attached by id: only by the organisation that uploaded it.
    uploaded = await api.post(
        f"/api/cases/{cid}/attachments",
        files={"file": ("notes.txt", b"call notes", "text/plain; charset=utf-8")},
        headers=creditor.headers,
    )
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["contentType"] == "text/plain"
    file_id = uploaded.json()["id"]
    borrowed = await post_chat(api, partner, cid, "Mine now", attachmentIds=[file_id])
    assert borrowed.status_code == 422
    with_file = await post_chat(api, creditor, cid, "Our notes", attachmentIds=[file_id])
    assert with_file.status_code == 201, with_file.text
    assert [a["id"] for a in with_file.json()["attachments"]] == [file_id]
    assert len(stored_files(settings)) == 2

    # A refused message takes its files with it.
    refused = await api.post(
        f"/api/cases/{cid}/chats",
        data={"message": "For the lead", "threadType": "Lead Chat"},
        files=[("files", ("x.pdf", PDF, "application/pdf"))],
        headers=partner.headers,
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "not_a_party")
    assert await count(sessions, Attachment) == 2
    assert len(stored_files(settings)) == 2


async def test_same_idempotency_key_posts_once(
    api: httpx.AsyncClient,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cid = (await in_collection(api, creditor, partner, ops))["caseId"]
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await post_chat(api, creditor, cid, "Once", headers=key)
    again = await post_chat(api, creditor, cid, "Once", headers=key)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    other = await post_chat(api, creditor, cid, "Twice?", headers=key)
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")

    file_key = {"Idempotency-Key": str(uuid.uuid4())}
    for _ in range(2):
        with_file = await api.post(
            f"/api/cases/{cid}/chats",
            data={"message": "With a file"},
            files=[("files", ("a.pdf", PDF, "application/pdf"))],
            headers={**partner.headers, **file_key},
        )
        assert with_file.status_code == 201, with_file.text
    note_key = {"Idempotency-Key": str(uuid.uuid4())}
    notes = [
        await api.post(
            f"/api/cases/{cid}/notes",
            json={"note": "Once"},
            headers={**partner.headers, **note_key},
        )
        for _ in range(2)
    ]
    assert [n.status_code for n in notes] == [201, 201]
    assert notes[0].json()["id"] == notes[1].json()["id"]

    assert [m["message"] for m in await chats(api, creditor, cid)] == ["Once", "With a file"]
    assert await count(sessions, Attachment) == 1
    assert len(stored_files(settings)) == 1
    assert await count(sessions, CaseNote) == 1
    [reply] = await tasks_of(api, creditor, type="ReplyToChat", status="Open")
    assert reply["caseId"] == cid


async def test_creditor_answer_in_chat_provides_the_information_asked_for(
    api: httpx.AsyncClient, creditor: Actor, partner: Actor, ops: Actor
) -> None:
    cid = (await in_collection(api, creditor, partner, ops))["caseId"]
    held = await move(
        api, partner, cid, status="On Hold", subStatus="More info required", note="Need the PO"
    )
    assert held.status_code == 200, held.text
    [more_info] = await eventually(
        lambda: tasks_of(api, creditor, type="MoreInfoNeeded", status="Open")
    )
    assert more_info["action"] == {
        "method": "POST",
        "path": f"/api/cases/{cid}/chats",
        "body": {"threadType": "Invoice Chat"},
        "needsMessage": True,
    }

    answered = await api.post(
        more_info["action"]["path"], json={"message": "PO 4711 attached"}, headers=creditor.headers
    )
    assert answered.status_code == 201, answered.text
    case = (await api.get(f"/api/cases/{cid}", headers=creditor.headers)).json()
    assert (case["status"], case["lifecycle"]) == ("In Collection", "Active")
    solved = await task(api, creditor, more_info["id"])
    assert solved["status"] == "Solved"
    history = (await api.get(f"/api/cases/{cid}/history", headers=creditor.headers)).json()
    assert history["history"][-1]["note"] == "Information provided"
    timeline = (await api.get(f"/api/cases/{cid}/timeline", headers=partner.headers)).json()[
        "items"
    ]
    # The answer and the resumption it caused share a moment: what was said comes first.
    assert [i["type"] for i in timeline[-3:]] == ["statusChange", "message", "statusChange"]
    assert timeline[-2]["date"] == timeline[-1]["date"]


async def test_lead_threads_are_private_to_each_invited_partner(
    api: httpx.AsyncClient,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    rival = await make_actor(sessions, OrgKind.PARTNER)
    cid = (await ready_case(api, creditor))["caseId"]
    invited = {"partnerIds": [str(partner.org_id), str(rival.org_id)]}
    requested = await api.post(
        f"/api/cases/{cid}/quote-requests", json=invited, headers=ops.headers
    )
    assert requested.status_code == 200, requested.text
    questions = {"threadType": "Invoice Questions Chat"}

    # Before quoting, each invited partner asks its own questions; the creditor answers each.
    for asker, text in ((partner, "Is the debtor still trading?"), (rival, "Any disputes?")):
        asked = await post_chat(api, asker, cid, text, **questions)
        assert asked.status_code == 201, asked.text
    answer = await post_chat(
        api, creditor, cid, "Yes, trading", partnerId=str(partner.org_id), **questions
    )
    assert answer.status_code == 201, answer.text
    # The creditor must say which partner a lead thread is with.
    assert (await post_chat(api, creditor, cid, "Hello all", **questions)).status_code == 422

    mine = await chats(api, partner, cid)
    assert [(m["role"], m["message"]) for m in mine] == [
        ("Partner", "Is the debtor still trading?"),
        ("Creditor", "Yes, trading"),
    ]
    assert [m["message"] for m in await chats(api, rival, cid)] == ["Any disputes?"]
    assert len(await chats(api, creditor, cid)) == 3
    # Asking for the other partner's thread shows nothing, it does not leak it.
    assert await chats(api, rival, cid, partnerId=str(partner.org_id)) == []
    # The Lead Chat opens only once the partner has quoted.
    early = await post_chat(api, rival, cid, "About my quote", threadType="Lead Chat")
    assert early.status_code == 403, early.text
    quoted = await api.post(
        f"/api/cases/{cid}/quotes", json={"feePercent": "12"}, headers=rival.headers
    )
    assert quoted.status_code == 201, quoted.text
    lead = await post_chat(api, rival, cid, "About my quote", threadType="Lead Chat")
    assert lead.status_code == 201, lead.text
    assert lead.json()["threadType"] == "Lead Chat"
    assert all(m["message"] != "About my quote" for m in await chats(api, partner, cid))
