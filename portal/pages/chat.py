"""The chats: a case's threads (the solution page of ReplyToChat, NewMessage,
ClientInputRequired and MoreInfoNeeded) and each creditor-partner pair's general chat (the
solution page of its chat tasks), each message with its files and a reply form.

A reply runs the API's own command (``api.routes.chat.send_case_message``,
``api.routes.relationships.send_relationship_message``) after the API's role rule, with the
message and files read by the API's own form reader; files are downloaded through the API's
own routes."""

from __future__ import annotations

import typing
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from api.chat_posts import ChatPrincipal, message_form, message_post
from api.chat_views import (
    ChatMessageView,
    ChatPost,
    MessagePost,
    RelationshipPost,
    message_view,
)
from api.errors import Problem, not_found
from api.routes import chat as chat_routes
from api.routes import relationships as relationship_routes
from api.uploads import Upload
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
MESSAGES = 500  # shown per chat page

Send = Callable[[AsyncSession, Any, Sequence[Upload]], Awaitable[Any]]
Rerender = Callable[[Problem, dict[str, str]], Awaitable[Response]]


@dataclass
class Thread:
    type: ThreadType
    partner_id: uuid.UUID | None
    title: str
    hidden: dict[str, str]  # the reply form's fields naming the thread
    messages: list[ChatMessageView] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        suffix = f"-{self.partner_id}" if self.partner_id else ""
        return f"thread-{self.type.value.lower().replace(' ', '-')}{suffix}"


def _page(
    request: Request,
    principal: Principal,
    *,
    title: str,
    back: list[tuple[str, str]],
    threads: list[Thread],
    post_url: str,
    files_url: str,
    empty: str,
    problem: Problem | None,
    form: dict[str, str] | None,
) -> Response:
    return render(
        request,
        "chat.html",
        status_code=problem.status if problem else 200,
        section="cases",
        title=title,
        back=back,
        threads=threads,
        refill=_refilled(threads, form or {}),
        post_url=post_url,
        files_url=files_url,
        empty=empty,
        may_write=principal.role in (OrgKind.CREDITOR, OrgKind.PARTNER),
        notice=None if problem else notice_of(request),
        errors=problem_messages(problem) if problem else [],
        form=form or {},
    )


def _refilled(threads: list[Thread], form: dict[str, str]) -> str | None:
    """The thread whose reply form gets back the text of a refused reply: the one it was
    sent to, else the first."""
    if not form or not threads:
        return None
    for thread in threads:
        if all(form.get(k, "") == v for k, v in thread.hidden.items()) and (
            form.get("partnerId", "") == thread.hidden.get("partnerId", "")
        ):
            return thread.anchor
    return threads[0].anchor


async def render_case_chat(
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
    creditor = principal.role is OrgKind.CREDITOR
    threads: dict[tuple[ThreadType, uuid.UUID | None], Thread] = {}

    def thread(kind: ThreadType, partner_id: uuid.UUID | None) -> Thread:
        key = (kind, partner_id)
        if key not in threads:
            hidden = {"threadType": kind.value}
            if creditor and partner_id:  # a creditor names the partner of a lead thread
                hidden["partnerId"] = str(partner_id)
            title = kind.value
            if kind is ThreadType.INVOICE_CHAT and row.partner_name and not partner_id:
                title += f" with {row.partner_name}"
            threads[key] = Thread(kind, partner_id, title, hidden)
        return threads[key]

    if row.case.partner_id is not None:  # the Invoice Chat is open to write in
        thread(ThreadType.INVOICE_CHAT, None)
    for record in records:
        view = message_view(record)
        lead = view.thread_type is not ThreadType.INVOICE_CHAT
        thread(view.thread_type, view.partner_id if lead else None).messages.append(view)
    number = row.case.case_number
    return _page(
        request,
        principal,
        title=f"Chat · case {number} · {row.case.debtor_name}",
        back=[(f"{PREFIX}/cases", "Cases"), (f"{PREFIX}/cases/{case_id}", f"Case {number}")],
        threads=list(threads.values()),
        post_url=f"{PREFIX}/cases/{case_id}/chat",
        files_url=f"{PREFIX}/cases/{case_id}/attachments",
        empty="No conversation yet: the Invoice Chat opens once a partner works the case.",
        problem=problem,
        form=form,
    )


async def render_relationship_chat(
    request: Request,
    principal: Principal,
    relationship_id: uuid.UUID,
    *,
    problem: Problem | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    async with request.app.state.sessions() as session:
        record = await relationship_routes.visible_relationship(session, principal, relationship_id)
        records, _ = await chat_store.list_relationship_messages(
            session=session, relationship_id=relationship_id, offset=0, limit=MESSAGES
        )
    other = {
        OrgKind.CREDITOR: record.partner_name,
        OrgKind.PARTNER: record.creditor_name,
    }.get(principal.role, f"{record.creditor_name} and {record.partner_name}")
    general = Thread(ThreadType.GENERAL, None, f"General chat with {other}", {})
    general.messages = [message_view(r) for r in records]
    return _page(
        request,
        principal,
        title=f"General chat · {other}",
        back=[(f"{PREFIX}/relationships", "Relationships")],
        threads=[general],
        post_url=f"{PREFIX}/relationships/{relationship_id}/chat",
        files_url=f"{PREFIX}/relationships/{relationship_id}/attachments",
        empty="",
        problem=problem,
        form=form,
    )


async def _reply(
    request: Request,
    principal: Principal,
    names: Sequence[str],
    model: type[MessagePost],
    send: Send,
    rerender: Rerender,
    done: str,
) -> Response:
    """Read the page's form (multipart with files, or plain), check its CSRF token, post it
    with ``send``; the page again with the API's refusal, or a redirect to ``done``."""
    await role_rule(typing.get_args(ChatPrincipal)[1:], principal)
    try:
        upload = await message_form(request, request.app.state.settings, (*names, CSRF_FIELD))
    except Problem as unreadable:  # too large, a file type not allowed: the form is not read
        return await rerender(unreadable, {})
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

        async def command(session: AsyncSession) -> Any:
            if upload is not None:
                post, files = await message_post(request, upload, model, names)
            else:
                post, files = model.model_validate(kept), []
            return await send(session, post, files)

        answer = await answer_of(request, command)
    finally:
        if upload is not None:
            await upload.close()
    if isinstance(answer, Problem):
        return await rerender(answer, kept)
    return redirect(done)


async def _download(
    request: Request, principal: Principal, route: Callable[..., Awaitable[Any]], **ids: Any
) -> Response:
    """A chat file through the API's own download route (the same 404 for anyone else)."""
    async with request.app.state.sessions() as session:
        file: Response = await invoke(route, request, principal, session, **ids)
    return file


@router.get("/cases/{case_id}/chat", response_class=HTMLResponse)
async def case_chat(request: Request, principal: PortalUser, case_id: uuid.UUID) -> Response:
    return await render_case_chat(request, principal, case_id)


@router.post("/cases/{case_id}/chat")
async def reply_in_case(request: Request, principal: PortalUser, case_id: uuid.UUID) -> Response:
    async def send(session: AsyncSession, post: Any, files: Sequence[Upload]) -> Any:
        return await chat_routes.send_case_message(
            case_id, post, files, request, principal, session, request.app.state.temporal
        )

    async def again(problem: Problem, kept: dict[str, str]) -> Response:
        return await render_case_chat(request, principal, case_id, problem=problem, form=kept)

    return await _reply(
        request,
        principal,
        chat_routes.CHAT_FORM_FIELDS,
        ChatPost,
        send,
        again,
        f"{PREFIX}/cases/{case_id}/chat?done=sent",
    )


@router.get("/cases/{case_id}/attachments/{attachment_id}")
async def case_file(
    request: Request, principal: PortalUser, case_id: uuid.UUID, attachment_id: uuid.UUID
) -> Response:
    return await _download(
        request,
        principal,
        chat_routes.download_attachment,
        case_id=case_id,
        attachment_id=attachment_id,
    )


@router.get("/relationships", response_class=HTMLResponse)
async def relationships(request: Request, principal: PortalUser) -> Response:
    """The creditor-partner pairs of the caller's organisation, each with its general chat."""
    async with request.app.state.sessions() as session:
        records = await chat_store.list_relationships(
            session=session, principal=principal, offset=0, limit=MESSAGES
        )
    return render(request, "relationships.html", section="relationships", pairs=records[0])


@router.get("/relationships/{relationship_id}/chat", response_class=HTMLResponse)
async def relationship_chat(
    request: Request, principal: PortalUser, relationship_id: uuid.UUID
) -> Response:
    return await render_relationship_chat(request, principal, relationship_id)


@router.post("/relationships/{relationship_id}/chat")
async def reply_in_relationship(
    request: Request, principal: PortalUser, relationship_id: uuid.UUID
) -> Response:
    async def send(session: AsyncSession, post: Any, files: Sequence[Upload]) -> Any:
        record = await relationship_routes.visible_relationship(session, principal, relationship_id)
        return await relationship_routes.send_relationship_message(
            record, post, files, request, principal, session, request.app.state.temporal
        )

    async def again(problem: Problem, kept: dict[str, str]) -> Response:
        return await render_relationship_chat(
            request, principal, relationship_id, problem=problem, form=kept
        )

    return await _reply(
        request,
        principal,
        relationship_routes.RELATIONSHIP_FORM_FIELDS,
        RelationshipPost,
        send,
        again,
        f"{PREFIX}/relationships/{relationship_id}/chat?done=sent",
    )


@router.get("/relationships/{relationship_id}/attachments/{attachment_id}")
async def relationship_file(
    request: Request, principal: PortalUser, relationship_id: uuid.UUID, attachment_id: uuid.UUID
) -> Response:
    return await _download(
        request,
        principal,
        relationship_routes.download_relationship_attachment,
        relationship_id=relationship_id,
        attachment_id=attachment_id,
    )
