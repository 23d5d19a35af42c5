"""The files of a case a caller may see (``GET /api/cases/{id}/files``): its chat attachments."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.accounts import Principal
from store.chat import case_attachments_of, visible_threads
from store.models import Attachment, ChatMessageRow


@dataclass(frozen=True)
class CaseFile:
    attachment: Attachment
    message_id: str | None  # the chat message it was sent with; None while not yet sent


async def case_files(
    *, session: AsyncSession, principal: Principal, case_id: uuid.UUID
) -> list[CaseFile]:
    """The case's attachments the caller may download (the rule of the download itself,
    ``store.chat.case_attachments_of``), oldest first; the caller must see the case."""
    files = list(
        await session.scalars(
            select(Attachment)
            .where(case_attachments_of(case_id, principal))
            .order_by(Attachment.created_at, Attachment.id)
        )
    )
    if not files:
        return []
    sent = await session.execute(
        select(ChatMessageRow.id, ChatMessageRow.attachment_ids).where(
            ChatMessageRow.case_id == case_id, visible_threads(principal)
        )
    )
    message_of = {str(a): message_id for message_id, ids in sent for a in ids}
    return [CaseFile(f, message_of.get(str(f.id))) for f in files]
