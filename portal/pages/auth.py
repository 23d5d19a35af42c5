"""Sign in, sign out, and set a password from a one-time link."""

from __future__ import annotations

import datetime as dt
import secrets
import uuid

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from portal.rendering import redirect, render
from portal.security import (
    CSRF_COOKIE,
    PREFIX,
    SESSION_COOKIE,
    check_csrf,
    client_address,
    form_text,
    safe_next,
    signer,
)
from store.accounts import AccountError
from store.passwords import (
    Locked,
    SignInLimits,
    check_password_rules,
    set_password,
    sign_in,
    user_stamp,
)

router = APIRouter()


def _limits(request: Request) -> SignInLimits:
    settings = request.app.state.settings
    window = dt.timedelta(minutes=settings.portal_sign_in_window_minutes)
    return SignInLimits(
        max_failures_per_account=settings.portal_max_failures_per_account,
        max_failures_per_address=settings.portal_max_failures_per_address,
        window=window,
        lockout=window,
    )


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_page(request: Request, next: str | None = None) -> Response:
    return render(request, "sign_in.html", next=safe_next(next), email="", error=None)


@router.post("/sign-in", response_class=HTMLResponse, dependencies=[Depends(check_csrf)])
async def sign_in_submit(request: Request) -> Response:
    form = await request.form()
    email = form_text(form, "email").strip()
    password = form_text(form, "password")
    next_path = safe_next(form_text(form, "next"))
    async with request.app.state.sessions() as session:
        outcome = await sign_in(
            session=session,
            email=email,
            password=password,
            address=client_address(request),
            limits=_limits(request),
        )
    if outcome is None or isinstance(outcome, Locked):
        if isinstance(outcome, Locked):
            minutes = max(1, int((outcome.until - dt.datetime.now(dt.UTC)).total_seconds() // 60))
            error = f"Too many failed sign-ins. Try again in {minutes} minutes."
            status = 429
        else:
            error = "That e-mail and password do not match an account."
            status = 401
        return render(
            request, "sign_in.html", status_code=status, next=next_path, email=email, error=error
        )
    keys = signer(request)
    response = RedirectResponse(next_path, status_code=303)
    keys.set_cookie(
        response,
        SESSION_COOKIE,
        keys.session_value(outcome.principal.user_id, outcome.password_stamp),
        max_age=keys.session_seconds,
    )
    # A fresh CSRF cookie: a token planted before sign-in is worth nothing after it.
    keys.set_cookie(response, CSRF_COOKIE, secrets.token_urlsafe(24), max_age=None)
    return response


@router.post("/sign-out", dependencies=[Depends(check_csrf)])
async def sign_out(request: Request) -> Response:
    response = redirect(PREFIX + "/sign-in")
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, path=PREFIX)
    return response


async def _link_user(request: Request, token: str) -> tuple[uuid.UUID, str] | None:
    """The (user id, e-mail) a set-password link is for, while it is still good."""
    data = signer(request).read_password_token(token)
    if data is None:
        return None
    user_id, stamp = data
    async with request.app.state.sessions() as session:
        found = await user_stamp(session=session, user_id=user_id)
    if found is None or found[1] != stamp:  # used already, or the user is gone
        return None
    return user_id, found[0]


@router.get("/password/{token}", response_class=HTMLResponse)
async def password_page(request: Request, token: str) -> Response:
    found = await _link_user(request, token)
    if found is None:
        return render(request, "password_link_gone.html", status_code=410)
    return render(request, "set_password.html", token=token, email=found[1], error=None)


@router.post("/password/{token}", response_class=HTMLResponse, dependencies=[Depends(check_csrf)])
async def password_submit(request: Request, token: str) -> Response:
    found = await _link_user(request, token)
    if found is None:
        return render(request, "password_link_gone.html", status_code=410)
    user_id, email = found
    form = await request.form()
    password = form_text(form, "password")
    error = None
    if password != form_text(form, "confirm"):
        error = "The two passwords differ."
    else:
        try:
            check_password_rules(password, email)
        except AccountError as exc:
            error = str(exc).capitalize() + "."
    if error is not None:
        return render(
            request, "set_password.html", status_code=422, token=token, email=email, error=error
        )
    async with request.app.state.sessions() as session, session.begin():
        await set_password(session=session, user_id=user_id, password=password)
    return redirect(PREFIX + "/sign-in?next=" + PREFIX + "/tasks&password=set")
