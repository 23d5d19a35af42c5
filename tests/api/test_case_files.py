"""``GET /api/cases/{id}/files``: a case's chat attachments, each party seeing what it may
download."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.enums import OrgKind
from store.db import transaction
from store.models import Attachment, CaseInvitation, ChatMessageRow
from tests.support import SEED_TIME, Actor, add_case, make_actor


def _file(
    case_id: uuid.UUID | None, side: Actor, uploader: Actor, name: str, minutes: int
) -> Attachment:
    return Attachment(
        id=uuid.uuid4(),
        case_id=case_id,
        partner_id=side.org_id,
        org_id=uploader.org_id,
        user_id=uploader.principal.user_id,
        filename=name,
        content_type="application/pdf",
        size=1234,
        sha256="0" * 64,
        storage_key=uuid.uuid4().hex,
        created_at=SEED_TIME + dt.timedelta(minutes=minutes),
    )


async def test_case_files_are_the_attachments_each_caller_may_download(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    invited = await make_actor(sessions, OrgKind.PARTNER)
    case_id = await add_case(sessions, creditor, partner=partner)
    elsewhere = await add_case(sessions, creditor, partner=partner)
    sent = _file(case_id, partner, partner, "letter.pdf", 1)
    lead = _file(case_id, invited, creditor, "for the quote.pdf", 2)
    other_case = _file(elsewhere, partner, partner, "other.pdf", 3)
    message_id = str(uuid.uuid4())
    async with transaction(sessions) as session:
        session.add_all([sent, lead, other_case])
        session.add(CaseInvitation(case_id=case_id, partner_id=invited.org_id))
        session.add(
            ChatMessageRow(
                id=message_id,
                seq=1,
                case_id=case_id,
                thread_type="Invoice Chat",
                partner_id=partner.org_id,
                role="partner",
                org_id=partner.org_id,
                user_id=partner.principal.user_id,
                body="The signed letter",
                attachment_ids=[str(sent.id)],
                created_at=sent.created_at,
            )
        )

    async def names(reader: Actor) -> list[str]:
        answer = await api.get(f"/api/cases/{case_id}/files", headers=reader.headers)
        assert answer.status_code == 200, answer.text
        return [f["fileName"] for f in answer.json()]

    assert await names(creditor) == ["letter.pdf", "for the quote.pdf"]
    assert await names(ops) == ["letter.pdf", "for the quote.pdf"]
    assert await names(partner) == ["letter.pdf"]
    assert await names(invited) == ["for the quote.pdf"]

    [first, second] = (
        await api.get(f"/api/cases/{case_id}/files", headers=creditor.headers)
    ).json()
    assert first == {
        "id": str(sent.id),
        "dateCreated": "2026-11-02T09:01:00Z",
        "dateUpdated": "2026-11-02T09:01:00Z",
        "caseId": str(case_id),
        "entityType": "Chat",
        "entityId": message_id,
        "fileName": "letter.pdf",
        "url": f"/api/cases/{case_id}/attachments/{sent.id}",
        "description": None,
        "documentType": None,
        "contentType": "application/pdf",
        "size": 1234,
    }
    assert second["entityId"] is None, "uploaded, not yet sent"


async def test_case_files_of_another_organisations_case_are_404(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    case_id = await add_case(sessions, creditor)
    for kind in (OrgKind.CREDITOR, OrgKind.PARTNER):
        other = await make_actor(sessions, kind)
        answer = await api.get(f"/api/cases/{case_id}/files", headers=other.headers)
        assert (answer.status_code, answer.json()["code"]) == (404, "not_found")
    unknown = await api.get(f"/api/cases/{uuid.uuid4()}/files", headers=creditor.headers)
    assert unknown.status_code == 404
