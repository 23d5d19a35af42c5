"""The case chat: every thread of the case the user may read, each with its messages, files and
a reply form (the solution page of ReplyToChat, NewMessage, ClientInputRequired and
MoreInfoNeeded). A reply runs the API's own command (``api.routes.chat.send_case_message``)
after the API's role rule, with the message and files read by the API's own form reader; files
are downloaded through the API's own route."""

from __future__ import annotations

import typing
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.chat_posts import ChatPrincipal, message_form, message_post
from api.chat_views import ChatMessageView, ChatPost, message_view
from api.errors import Problem, not_found
from api.routes import chat as chat_routes
from domain.chat import ThreadType
from domain.enums import OrgKind
from portal.actions import answer_of, notice_of, problem_messages
from portal.invoke import invoke, role_rule
from portal.rendering import redirect, render
from portal.security import (
    CSRF_COOKIE,
    CSRF_FIELD,
    PREFIX,
    PortalUser,
    csrf_refused,
    form_text,
    signer,
)
from store import cases as case_store
from store import chat as chat_store
from store.accounts import Principal

router = APIRouter()
MESSAGES = 500  # per page; a case chat longer than that pages (``page``)


@dataclass
class Thread:
    type: ThreadType
    partner_id: uuid.UUID | None
    partner_name: str | None
    messages: list[ChatMessageView] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        suffix = f"-{self.partner_id}" if self.partner_id else ""
        return f"thread-{self.type.value.lower().replace(' ', '-')}{suffix}"


async def render_chat(
    request: Request,
    principal: Principal,
    case_id: uuid.UUID,
    *,
    problem: Problem | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    async with request.app.state.sessions() as session:
        row = await case_store.get_case(session=session, case_id=case_id, principal=principal)
        if row is None:
            raise not_found("Case")
        records, _ = await chat_store.list_case_messages(
            session=session,
            principal=principal,
            case_id=case_id,
            thread_type=None,
            partner_id=None,
            offset=0,
            limit=MESSAGES,
        )
    threads: dict[tuple[ThreadType, uuid.UUID | None], Thread] = {}
    if row.case.partner_id is not None:  # the Invoice Chat is open to write in
        threads[(ThreadType.INVOICE_CHAT, None)] = Thread(
            ThreadType.INVOICE_CHAT, None, row.partner_name
        )
    for record in records:
        view = message_view(record)
        lead = view.thread_type is not ThreadType.INVOICE_CHAT
        key = (view.thread_type, view.partner_id if lead else None)
        if key not in threads:
            threads[key] = Thread(view.thread_type, key[1], None)
        threads[key].messages.append(view)
    return render(
        request,
        "chat.html",
        status_code=problem.status if problem else 200,
        section="cases",
        case_id=case_id,
        case_number=row.case.case_number,
        debtor=row.case.debtor_name,
        threads=list(threads.values()),
        thread_types=[t.type.value for t in threads.values()],
        may_write=principal.role in (OrgKind.CREDITOR, OrgKind.PARTNER),
        is_creditor_side=principal.role is OrgKind.CREDITOR,
        notice=None if problem else notice_of(request),
        errors=problem_messages(problem) if problem else [],
        form=form or {},
    )


@router.get("/cases/{case_id}/chat", response_class=HTMLResponse)
async def chat_page(request: Request, principal: PortalUser, case_id: uuid.UUID) -> Response:
    return await render_chat(request, principal, case_id)


@router.post("/cases/{case_id}/chat")
async def reply(request: Request, principal: PortalUser, case_id: uuid.UUID) -> Response:
    """A message in one thread: the page's multipart form (with files), or a plain form
    (without), with the API's field names."""
    await role_rule(typing.get_args(ChatPrincipal)[1:], principal)
    settings = request.app.state.settings
    names = chat_routes.CHAT_FORM_FIELDS
    try:
        upload = await message_form(request, settings, (*names, CSRF_FIELD))
    except Problem as unreadable:  # too large, a file type not allowed: the form is not read
        return await render_chat(request, principal, case_id, problem=unreadable)
    try:
        kept: dict[str, str] = {}
        if upload is not None:
            token = upload.value(CSRF_FIELD)
            for name in names:
                if value := upload.value(name):
                    kept[name] = value
        else:
            plain = await request.form()
            token = form_text(plain, CSRF_FIELD) or None
            for name in names:
                if value := form_text(plain, name):
                    kept[name] = value
        if not signer(request).csrf_valid(request.cookies.get(CSRF_COOKIE), token):
            raise csrf_refused()

        async def command(session: Any) -> Any:
            if upload is not None:
                post, files = await message_post(request, upload, ChatPost, names)
            else:
                post, files = ChatPost.model_validate(kept), []
            return await chat_routes.send_case_message(
                case_id, post, files, request, principal, session, request.app.state.temporal
            )

        answer = await answer_of(request, command)
    finally:
        if upload is not None:
            await upload.close()
    if isinstance(answer, Problem):
        return await render_chat(request, principal, case_id, problem=answer, form=kept)
    return redirect(f"{PREFIX}/cases/{case_id}/chat?done=sent")


@router.get("/cases/{case_id}/attachments/{attachment_id}")
async def download(
    request: Request, principal: PortalUser, case_id: uuid.UUID, attachment_id: uuid.UUID
) -> Response:
    async with request.app.state.sessions() as session:
        file: Response = await invoke(
            chat_routes.download_attachment,
            request,
            principal,
            session,
            case_id=case_id,
            attachment_id=attachment_id,
        )
    return file
