"""Which e-mails you get: the signed-in user's preferences page (``/preferences``, through the
API's own ``GET/PUT /api/me/notification-preferences``), and an e-mail's unsubscribe link
(``/unsubscribe?token=...``), which works without signing in.

The unsubscribe link's token (mail/unsubscribe.py) names the user and the category. ``GET``
only shows what the link turns off, with a button: mail scanners and link previews open links,
and must not unsubscribe anyone. ``POST`` turns it off; it is also the RFC 8058 one-click target
that ``List-Unsubscribe-Post`` advertises, which a mail provider calls with neither a session nor
a CSRF token: the signed token is the credential, and it can only turn a category off."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from api.errors import Problem
from api.routes import me as me_routes
from domain.mail import CATEGORIES, MailCategory, categories_of
from mail.unsubscribe import Unsubscribe, read_unsubscribe_token
from portal.actions import answer_of, problem_messages, run
from portal.invoke import invoke
from portal.rendering import redirect, render
from portal.security import PREFIX, PortalUser, check_csrf
from store import preferences as preference_store
from store.accounts import Principal
from store.models import User

router = APIRouter()
SAVED = "saved"


def link_invalid() -> Problem:
    return Problem(
        400,
        "unsubscribe_link_invalid",
        "This unsubscribe link is not valid: it may have been cut short, or it is older than "
        "the last change of the signing key. Sign in and choose your e-mails on the "
        "preferences page instead.",
    )


def link_not_configured() -> Problem:
    return Problem(
        503,
        "unsubscribe_not_configured",
        "Unsubscribe links cannot be checked: set UNSUBSCRIBE_SECRET_KEY (or PORTAL_SECRET_KEY) "
        "to the value the worker signs them with.",
    )


async def render_preferences(
    request: Request, principal: Principal, *, problem: Problem | None = None
) -> Response:
    view = await answer_of(
        request,
        lambda session: invoke(me_routes.get_notification_preferences, request, principal, session),
    )
    if isinstance(view, Problem):
        raise view
    return render(
        request,
        "preferences.html",
        status_code=problem.status if problem else 200,
        section="preferences",
        preferences=view.preferences,
        focus=request.query_params.get("category", ""),
        notice="Your e-mail preferences are saved."
        if request.query_params.get("done") == SAVED and problem is None
        else None,
        errors=problem_messages(problem) if problem else [],
    )


@router.get("/preferences", response_class=HTMLResponse)
async def preferences_page(request: Request, principal: PortalUser) -> Response:
    return await render_preferences(request, principal)


@router.post("/preferences", dependencies=[Depends(check_csrf)])
async def save_preferences(request: Request, principal: PortalUser) -> Response:
    """Every category of the page (the user's side's): ticked is on, unticked off (a form sends
    ticked boxes only). A ticked category of the other side's is passed on, for the API to
    refuse (422, nothing changed); a user whose side gets no e-mails (ops) has nothing else."""
    form = await request.form()
    ticked = {str(value) for value in form.getlist("enabled")}
    theirs = categories_of(principal.role)
    foreign = [c for c in MailCategory if c.value in ticked and c not in theirs]
    if not theirs and not foreign:
        return await render_preferences(request, principal)
    body = me_routes.UpdateNotificationPreferences(
        preferences=[
            *(
                me_routes.PreferenceChoice(category=category, enabled=category.value in ticked)
                for category in theirs
            ),
            *(me_routes.PreferenceChoice(category=category, enabled=True) for category in foreign),
        ]
    )
    problem = await run(
        request,
        lambda session: invoke(
            me_routes.update_notification_preferences, request, principal, session, body=body
        ),
    )
    if problem is not None:
        return await render_preferences(request, principal, problem=problem)
    return redirect(f"{PREFIX}/preferences?done={SAVED}")


async def _unsubscribe_of(request: Request) -> tuple[Unsubscribe, str]:
    """What the link's token asks and the e-mail address of its user; 400 for a bad token."""
    secret = request.app.state.settings.unsubscribe_secret
    if secret is None:
        raise link_not_configured()
    token = request.query_params.get("token", "")
    asked = read_unsubscribe_token(secret, token) if token else None
    if asked is None:
        raise link_invalid()
    async with request.app.state.sessions() as session:
        user = await session.get(User, asked.user_id)
    if user is None:
        raise link_invalid()
    return asked, user.email


def _render_unsubscribe(
    request: Request, asked: Unsubscribe, email: str, *, enabled: bool, done: bool
) -> Response:
    return render(
        request,
        "unsubscribe.html",
        email=email,
        category_label=CATEGORIES[asked.category].label,
        reason=CATEGORIES[asked.category].reason,
        enabled=enabled,
        done=done,
        action=f"{PREFIX}/unsubscribe?{request.url.query}",
    )


@router.get("/unsubscribe", response_class=HTMLResponse)
async def unsubscribe_page(request: Request) -> Response:
    asked, email = await _unsubscribe_of(request)
    async with request.app.state.sessions() as session:
        chosen = await preference_store.preferences_of(session=session, user_id=asked.user_id)
    return _render_unsubscribe(request, asked, email, enabled=chosen[asked.category], done=False)


@router.post("/unsubscribe", response_class=HTMLResponse)
async def unsubscribe(request: Request) -> Response:
    """Turn the token's category off for its user: no session, no CSRF token (see the module)."""
    asked, email = await _unsubscribe_of(request)
    async with request.app.state.sessions() as session, session.begin():
        await preference_store.set_preferences(
            session=session,
            user_id=asked.user_id,
            choices={asked.category: False},
            now=dt.datetime.now(dt.UTC),
        )
    return _render_unsubscribe(request, asked, email, enabled=False, done=True)
