"""Security regressions: what a partner may read of other parties' work, who may create a
Generic task or upload for a thread, the request guard (key header, body size), pagination
bounds, role before body, the Idempotency-Key after a refused command, and NUL characters."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.pagination import MAX_PAGE, MAX_PAGE_SIZE
from domain.enums import OrgKind
from settings import Settings
from store.db import transaction
from store.models import Attachment, CaseInvitation, CaseRegistration
from tests.api.test_chat import count, stored_files
from tests.api.test_status import in_collection
from tests.api.test_tasks import assign, new_case, ready_case, tasks_of
from tests.files import PDF
from tests.support import Actor, case_body, make_actor

MASKED_OPS = "Platform"
MASKED_PARTNER = "Partner"


# -- 1. a partner reads only its own notes, and history details of the parties it works with ----
async def history_of(api: httpx.AsyncClient, actor: Actor, case_id: str) -> list[dict[str, Any]]:
    response = await api.get(f"/api/cases/{case_id}/history", headers=actor.headers)
    assert response.status_code == 200, response.text
    return list(response.json()["history"])


async def timeline_of(api: httpx.AsyncClient, actor: Actor, case_id: str) -> list[dict[str, Any]]:
    response = await api.get(f"/api/cases/{case_id}/timeline", headers=actor.headers)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def notes_of(api: httpx.AsyncClient, actor: Actor, case_id: str) -> list[str | None]:
    response = await api.get(
        f"/api/cases/{case_id}/notes", params={"pageSize": 100}, headers=actor.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["page"]["totalResults"] == len(response.json()["notes"])
    return [n["note"] for n in response.json()["notes"]]


def as_partner_reads_it(
    full: list[dict[str, Any]], *, readable: set[str], ops_users: set[str]
) -> list[dict[str, Any]]:
    """The documented rule: note and author (name and id) only of API, System and the readable
    users; of the others only who in general."""
    out = []
    for entry in full:
        by = entry["changedById"] or entry["changedBy"]
        if by in ("API", "System") or by in readable:
            out.append(entry)
        else:
            masked = MASKED_OPS if by in ops_users else MASKED_PARTNER
            out.append({**entry, "changedBy": masked, "changedById": None, "note": None})
    return out


def status_changes(timeline: list[dict[str, Any]]) -> list[tuple[int, str, str | None]]:
    return [(i["seq"], i["changedBy"], i["note"]) for i in timeline if i["type"] == "statusChange"]


async def test_partner_reads_only_its_own_notes_and_masked_history_of_others(
    api: httpx.AsyncClient,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    winner = await make_actor(sessions, OrgKind.PARTNER)
    rival = await make_actor(sessions, OrgKind.PARTNER)
    cid = (await ready_case(api, creditor))["caseId"]
    assert (await assign(api, ops, cid, partner)).status_code == 200
    logged = await api.post(
        f"/api/cases/{cid}/notes", json={"note": "FIRST-PARTNER-NOTE"}, headers=partner.headers
    )
    assert logged.status_code == 201, logged.text
    called = await api.post(
        f"/api/cases/{cid}/calls",
        json={"durationSeconds": 60, "outcome": "Reached", "note": "FIRST-PARTNER-CALL"},
        headers=partner.headers,
    )
    assert called.status_code == 201, called.text
    rejected = await api.post(
        f"/api/cases/{cid}/reject", json={"reason": "REJECT-REASON"}, headers=partner.headers
    )
    assert rejected.status_code == 204, rejected.text
    invited = {"partnerIds": [str(winner.org_id), str(rival.org_id)]}
    requested = await api.post(
        f"/api/cases/{cid}/quote-requests", json=invited, headers=ops.headers
    )
    assert requested.status_code == 200, requested.text
    quoted = await api.post(
        f"/api/cases/{cid}/quotes", json={"feePercent": "12.5"}, headers=winner.headers
    )
    assert quoted.status_code == 201, quoted.text

    full = await history_of(api, creditor, cid)
    assert await history_of(api, ops, cid) == full, "ops read the history unchanged"
    authors = {e["changedById"] or e["changedBy"] for e in full}
    users = {str(a.principal.user_id) for a in (ops, partner, winner)}
    assert {"API", "System"} | users <= authors, "the case has changes by every kind of author"
    ops_users = {str(ops.principal.user_id)}
    creditor_user = str(creditor.principal.user_id)

    # The rival reads its lead: none of the first partner's notes and calls, no rejection
    # reason, nothing ops or the winner wrote.
    rival_view = as_partner_reads_it(
        full, readable={creditor_user, str(rival.principal.user_id)}, ops_users=ops_users
    )
    assert await history_of(api, rival, cid) == rival_view
    assert await notes_of(api, rival, cid) == []
    timeline = await timeline_of(api, rival, cid)
    assert {i["type"] for i in timeline} == {"statusChange"}
    assert status_changes(timeline) == [(e["seq"], e["changedBy"], e["note"]) for e in rival_view]
    response_text = (await api.get(f"/api/cases/{cid}/timeline", headers=rival.headers)).text
    for secret in ("FIRST-PARTNER", "REJECT-REASON", "quoted", partner.principal.org_name):
        assert secret not in response_text
    masked = {e["changedBy"] for e in rival_view}
    assert {MASKED_OPS, MASKED_PARTNER} <= masked

    # The creditor picks the winner, who now works the case: it reads what it and the creditor
    # did, not what the first partner or ops wrote.
    [quote] = [
        q
        for q in (await api.get(f"/api/cases/{cid}/quotes", headers=creditor.headers)).json()
        if q["status"] == "Submitted"
    ]
    selected = await api.post(
        f"/api/cases/{cid}/quotes/selection",
        json={"quoteId": quote["id"]},
        headers=creditor.headers,
    )
    assert selected.status_code == 200, selected.text
    winner_note = await api.post(
        f"/api/cases/{cid}/notes", json={"note": "WINNER-NOTE"}, headers=winner.headers
    )
    assert winner_note.status_code == 201, winner_note.text
    full = await history_of(api, creditor, cid)
    assert creditor_user in {e["changedById"] for e in full}
    winner_view = as_partner_reads_it(
        full, readable={creditor_user, str(winner.principal.user_id)}, ops_users=ops_users
    )
    assert await history_of(api, winner, cid) == winner_view
    own_quote = [e for e in winner_view if e["changedById"] == str(winner.principal.user_id)]
    assert own_quote and own_quote[0]["note"], "a partner reads its own changes in full"
    by_creditor = [e for e in winner_view if e["changedById"] == creditor_user]
    assert by_creditor and all(e in full for e in by_creditor)
    assert status_changes(await timeline_of(api, winner, cid)) == [
        (e["seq"], e["changedBy"], e["note"]) for e in winner_view
    ]
    assert await notes_of(api, winner, cid) == ["WINNER-NOTE"]
    timeline_notes = [i for i in await timeline_of(api, winner, cid) if i["type"] != "statusChange"]
    assert [i["note"] for i in timeline_notes] == ["WINNER-NOTE"]
    # Creditors and ops read every note and call.
    everything = ["FIRST-PARTNER-NOTE", "FIRST-PARTNER-CALL", "WINNER-NOTE"]
    assert await notes_of(api, creditor, cid) == everything
    assert await notes_of(api, ops, cid) == everything


# -- 2. Generic tasks only for the caller's own organisation ---------------------------------------
async def invite_directly(
    sessions: async_sessionmaker[AsyncSession], case_id: str, partner: Actor
) -> None:
    """Make ``partner`` see a case another partner works, as an open quote invitation would."""
    async with transaction(sessions) as session:
        session.add(CaseInvitation(case_id=uuid.UUID(case_id), partner_id=partner.org_id))


async def test_generic_task_only_for_own_organisation_on_a_case_it_works(
    api: httpx.AsyncClient,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    lead = await make_actor(sessions, OrgKind.PARTNER)
    quoting = (await ready_case(api, creditor))["caseId"]
    requested = await api.post(
        f"/api/cases/{quoting}/quote-requests",
        json={"partnerIds": [str(lead.org_id)]},
        headers=ops.headers,
    )
    assert requested.status_code == 200, requested.text
    refused = await api.post(
        "/api/tasks", json={"caseId": quoting, "title": "Mine?"}, headers=lead.headers
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "not_a_party")

    cid = (await in_collection(api, creditor, partner, ops))["caseId"]
    await invite_directly(sessions, cid, lead)
    assert (await api.get(f"/api/cases/{cid}", headers=lead.headers)).status_code == 200
    for body in ({}, {"accessLevel": "Partner"}):
        intruding = await api.post(
            "/api/tasks", json={"caseId": cid, "title": "LEAD-TASK", **body}, headers=lead.headers
        )
        assert (intruding.status_code, intruding.json()["code"]) == (403, "not_a_party")
    assert all(t["title"] != "LEAD-TASK" for t in await tasks_of(api, partner))

    # The documented behaviour otherwise stays.
    own = await api.post("/api/tasks", json={"caseId": cid, "title": "P"}, headers=partner.headers)
    assert own.status_code == 201, own.text
    assert own.json()["accessLevel"] == "Partner"
    mine = await api.post(
        "/api/tasks", json={"caseId": cid, "title": "C"}, headers=creditor.headers
    )
    assert (mine.status_code, mine.json()["accessLevel"]) == (201, "Creditor")
    other_side = await api.post(
        "/api/tasks",
        json={"caseId": cid, "title": "C", "accessLevel": "Partner"},
        headers=creditor.headers,
    )
    assert other_side.status_code == 422
    by_ops = await api.post(
        "/api/tasks",
        json={"caseId": cid, "title": "OPS-FOR-PARTNER", "accessLevel": "Partner"},
        headers=ops.headers,
    )
    assert by_ops.status_code == 201, by_ops.text
    assert "OPS-FOR-PARTNER" in {t["title"] for t in await tasks_of(api, partner)}


# -- 3. the request guard: key header before the body, body size cap ------------------------------
async def test_request_without_key_header_is_401_before_its_body_is_read(
    api: httpx.AsyncClient,
) -> None:
    pulled = []

    async def body() -> AsyncIterator[bytes]:
        pulled.append(True)
        yield b'{"x": "' + b"a" * 100_000 + b'"}'

    for path in ("/api/cases", f"/api/cases/{uuid.uuid4()}/chats", "/api/nothing-here"):
        response = await api.post(
            path, content=body(), headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json() == {
            "type": "urn:caseloop:problem:unauthenticated",
            "title": "Unauthorized",
            "status": 401,
            "code": "unauthenticated",
            "detail": "Send a valid API key as 'Authorization: Bearer <key>' or 'XApiKey: <key>'.",
            "instance": path,
        }
    assert pulled == []
    assert (await api.get("/api/health")).status_code != 401
    assert (await api.get("/openapi.json")).status_code == 200


async def test_body_over_the_cap_is_413_before_the_route_runs(
    api: httpx.AsyncClient,
    creditor: Actor,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    settings.max_body_bytes = 2000  # the app reads its limits from these settings
    settings.attachment_max_bytes = 10_000

    def too_large(response: httpx.Response, cap: int) -> None:
        assert response.status_code == 413, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert (response.json()["code"], response.json()["maxBytes"]) == ("payload_too_large", cap)

    big_case = case_body(claimDescription="x" * 3000)
    too_large(await api.post("/api/cases", json=big_case, headers=creditor.headers), 2000)

    async def chunked(*parts: bytes) -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    json_headers = {**creditor.headers, "Content-Type": "application/json"}
    streamed = await api.post(
        "/api/cases",
        content=chunked(b'{"claimDescription": "', b"x" * 3000, b'"}'),
        headers=json_headers,
    )
    too_large(streamed, 2000)
    assert await count(sessions, CaseRegistration) == 0
    # A chunked body within the cap reaches the route.
    account = b'{"iban": "DK5000400440116243", "holderName": "Acme", "currencyCode": "DKK"}'
    small = await api.post(
        "/api/bank-accounts", content=chunked(account[:20], account[20:]), headers=json_headers
    )
    assert small.status_code == 201, small.text

    # Multipart may be ATTACHMENT_MAX_BYTES larger; the upload's own checks still apply.
    cap = 12_000
    url = f"/api/cases/{uuid.uuid4()}/attachments"
    declared = await api.post(
        url, files={"file": ("big.pdf", b"x" * 20_000, "application/pdf")}, headers=creditor.headers
    )
    too_large(declared, cap)
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="s.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()
    streamed = await api.post(
        url,
        content=chunked(head, *[b"x" * 5000] * 4, f"\r\n--{boundary}--\r\n".encode()),
        headers={**creditor.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    too_large(streamed, cap)
    one_file_too_big = await api.post(
        url, files={"file": ("a.pdf", b"x" * 10_001, "application/pdf")}, headers=creditor.headers
    )
    assert (one_file_too_big.status_code, one_file_too_big.json()["code"]) == (
        413,
        "attachment_too_large",
    )
    assert await count(sessions, Attachment) == 0
    assert stored_files(settings) == []


# -- 4. page bounds ---------------------------------------------------------------------------------
async def test_page_past_the_largest_offset_is_422_on_every_list(
    api: httpx.AsyncClient, creditor: Actor
) -> None:
    case_id, pair_id = uuid.uuid4(), uuid.uuid4()
    lists = [
        "/api/cases",
        "/api/tasks",
        "/api/relationships",
        f"/api/relationships/{pair_id}/chats",
        f"/api/cases/{case_id}/notes",
    ]
    for url in lists:
        for params in (
            {"page": 2**63},
            {"page": 10**30},
            {"page": 2**31, "pageSize": 2},
            {"Page": 2**31 + 1, "PageSize": 1},
        ):
            response = await api.get(url, params=params, headers=creditor.headers)
            assert response.status_code == 422, (url, params, response.text)
            assert [e["field"] for e in response.json()["errors"]] == ["page"]
    # The last page at the largest page size is fine: an empty page.
    last = await api.get(
        "/api/cases", params={"page": MAX_PAGE, "pageSize": MAX_PAGE_SIZE}, headers=creditor.headers
    )
    assert last.status_code == 200, last.text
    assert last.json()["cases"] == []


# -- 5. role before body ----------------------------------------------------------------------------
async def test_creditor_changing_status_is_403_even_with_an_invalid_body(
    api: httpx.AsyncClient, creditor: Actor, partner: Actor
) -> None:
    url = f"/api/cases/{uuid.uuid4()}/status"
    for body in ({"status": "Bogus"}, {}, {"status": "Closed", "closeCode": "Other"}):
        response = await api.post(url, json=body, headers=creditor.headers)
        assert (response.status_code, response.json()["code"]) == (403, "forbidden")
        assert "/withdraw" in response.json()["detail"]
    invalid = await api.post(
        f"/api/cases/{uuid.uuid4()}/status", json={"status": "Bogus"}, headers=partner.headers
    )
    assert invalid.status_code == 422


# -- 6. uploads only for a thread the caller can write in -------------------------------------------
async def upload(
    api: httpx.AsyncClient, actor: Actor, case_id: str, **fields: str
) -> httpx.Response:
    return await api.post(
        f"/api/cases/{case_id}/attachments",
        files={"file": ("a.pdf", PDF, "application/pdf")},
        data=fields,
        headers=actor.headers,
    )


def refused(response: httpx.Response, status: int, code: str) -> None:
    assert (response.status_code, response.json().get("code")) == (status, code), response.text


async def test_upload_only_for_an_open_thread_of_the_caller(
    api: httpx.AsyncClient,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    rival = await make_actor(sessions, OrgKind.PARTNER)
    decliner = await make_actor(sessions, OrgKind.PARTNER)
    lead = (await ready_case(api, creditor))["caseId"]
    invited = {"partnerIds": [str(p.org_id) for p in (partner, rival, decliner)]}
    requested = await api.post(
        f"/api/cases/{lead}/quote-requests", json=invited, headers=ops.headers
    )
    assert requested.status_code == 200, requested.text
    declined = await api.post(
        f"/api/cases/{lead}/quotes/decline", json={"reason": "busy"}, headers=decliner.headers
    )
    assert declined.status_code == 200, declined.text

    questions = {"threadType": "Invoice Questions Chat"}
    chat = {"threadType": "Lead Chat"}
    refused(await upload(api, partner, lead), 409, "invalid_transition")  # no partner yet
    refused(await upload(api, creditor, lead), 409, "invalid_transition")
    refused(await upload(api, partner, lead, **chat), 403, "not_a_party")  # not quoted yet
    for thread in (questions, chat):
        for partner_id in (decliner.org_id, uuid.uuid4()):
            response = await upload(api, creditor, lead, partnerId=str(partner_id), **thread)
            refused(response, 403, "not_a_party")
    assert (await upload(api, partner, lead, **questions)).status_code == 201
    for_partner = await upload(api, creditor, lead, partnerId=str(partner.org_id), **questions)
    assert for_partner.status_code == 201, for_partner.text
    quoted = await api.post(
        f"/api/cases/{lead}/quotes", json={"feePercent": "12"}, headers=rival.headers
    )
    assert quoted.status_code == 201, quoted.text
    assert (await upload(api, rival, lead, **chat)).status_code == 201
    assert (await upload(api, creditor, lead, partnerId=str(rival.org_id), **chat)).status_code == (
        201
    )

    # The Invoice Chat is the working partner's; a partner that only sees the case has none.
    cid = (await in_collection(api, creditor, partner, ops))["caseId"]
    await invite_directly(sessions, cid, rival)
    refused(await upload(api, rival, cid), 403, "not_a_party")
    assert (await upload(api, partner, cid)).status_code == 201
    withdrawn = await api.post(f"/api/cases/{cid}/withdraw", json={}, headers=creditor.headers)
    assert withdrawn.status_code == 200, withdrawn.text
    refused(await upload(api, creditor, cid), 409, "invalid_transition")
    refused(await upload(api, partner, cid), 409, "invalid_transition")

    assert await count(sessions, Attachment) == 5
    assert len(stored_files(settings)) == 5


# -- 7. a refused command does not use up the Idempotency-Key ---------------------------------------
async def test_validation_failure_inside_a_command_leaves_the_key_free(
    api: httpx.AsyncClient, creditor: Actor
) -> None:
    cid = (await new_case(api, creditor))["caseId"]
    url = f"/api/cases/{cid}"
    key = {**creditor.headers, "Idempotency-Key": str(uuid.uuid4())}
    invalid = await api.patch(url, json={"amountToRecover": "-5"}, headers=key)
    assert (invalid.status_code, invalid.json()["code"]) == (422, "validation_failed")
    assert [e["field"] for e in invalid.json()["errors"]] == ["amountToRecover"]
    fixed = await api.patch(url, json={"amountToRecover": "50"}, headers=key)
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["amountToRecover"] == "50.00"
    again = await api.patch(url, json={"amountToRecover": "50"}, headers=key)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == fixed.json()

    # A Problem the API raises while building the command (a date in the future) likewise.
    key = {**creditor.headers, "Idempotency-Key": str(uuid.uuid4())}
    future = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    early = await api.patch(url, json={"date": future, "dueDate": future}, headers=key)
    assert [e["field"] for e in early.json()["errors"]] == ["date"]
    assert (await api.patch(url, json={"claimDescription": "Fixed"}, headers=key)).status_code == (
        200
    )


async def test_workflow_rejection_is_still_stored_under_its_key(
    api: httpx.AsyncClient, creditor: Actor
) -> None:
    cid = (await ready_case(api, creditor))["caseId"]  # Validated: no longer editable
    key = {**creditor.headers, "Idempotency-Key": str(uuid.uuid4())}
    first = await api.patch(f"/api/cases/{cid}", json={"claimDescription": "X"}, headers=key)
    assert (first.status_code, first.json()["code"]) == (409, "case_not_editable")
    replay = await api.patch(f"/api/cases/{cid}", json={"claimDescription": "X"}, headers=key)
    assert (replay.status_code, replay.headers["Idempotent-Replayed"]) == (409, "true")
    other = await api.patch(f"/api/cases/{cid}", json={"claimDescription": "Y"}, headers=key)
    assert other.json()["code"] == "idempotency_key_reused"


# -- 8. NUL characters in free text the API queries with --------------------------------------------
async def test_nul_in_query_text_is_422(api: httpx.AsyncClient, creditor: Actor) -> None:
    for url in ("/api/cases", "/api/cases/analytics/status-summary"):
        response = await api.get(url, params={"debtorName": "a\x00b"}, headers=creditor.headers)
        assert response.status_code == 422, response.text
        assert [e["field"] for e in response.json()["errors"]] == ["debtorName"]
    for path in ("", "/postpone"):
        method = "GET" if not path else "POST"
        body = {"deadline": "2030-01-01T00:00:00Z", "reason": "r"} if path else None
        response = await api.request(
            method, f"/api/tasks/a%00b{path}", json=body, headers=creditor.headers
        )
        assert response.status_code == 422, response.text
        assert [e["field"] for e in response.json()["errors"]] == ["taskId"]
    listed = await api.get("/api/cases", params={"debtorName": "Tømrer"}, headers=creditor.headers)
    assert listed.status_code == 200
