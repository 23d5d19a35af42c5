"""Portal sessions, CSRF tokens and set-password links, all signed with PORTAL_SECRET_KEY.

- **Session:** a signed cookie (HttpOnly, SameSite=Lax, Secure when the portal is served over
  https) naming the user and the password stamp at sign-in. It lasts PORTAL_SESSION_HOURS; a
  password change, a deactivated user or sign-out ends it. The user is read from the database
  on every page (``store.passwords.principal_for_session``), so nothing in the cookie is
  trusted beyond who signed in.
- **CSRF:** every visitor gets a random ``caseloop_csrf`` cookie; each form carries an HMAC of
  it, and every POST must send the pair (a signed double submit). Signing in replaces the
  cookie, so a token planted before sign-in is worth nothing after.
- **Set-password links:** a signed token naming the user and the password stamp it was issued
  for: setting the password changes the stamp, so a link works once, and for
  PORTAL_PASSWORD_LINK_HOURS at most.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from api.errors import Problem
from settings import Settings
from store.accounts import Principal
from store.passwords import principal_for_session

SESSION_COOKIE = "caseloop_session"
CSRF_COOKIE = "caseloop_csrf"
CSRF_FIELD = "csrf_token"
PREFIX = "/portal"


class SignInRequired(Exception):
    """The page needs a signed-in user; the portal answers with a redirect to sign-in."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def not_configured() -> Problem:
    return Problem(
        503,
        "portal_not_configured",
        "The portal is not configured: set PORTAL_SECRET_KEY (at least 32 characters).",
    )


def csrf_refused() -> Problem:
    return Problem(
        403,
        "csrf_refused",
        "This form has expired or was not sent from the portal. Reload the page and try again.",
    )


@dataclass(frozen=True)
class Signer:
    """The portal's signing keys, from PORTAL_SECRET_KEY."""

    secret: bytes
    session_seconds: int
    link_seconds: int
    secure: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> Signer | None:
        if settings.portal_secret_key is None:
            return None
        return cls(
            secret=settings.portal_secret_key.get_secret_value().encode(),
            session_seconds=int(settings.portal_session_hours * 3600),
            link_seconds=int(settings.portal_password_link_hours * 3600),
            secure=urlsplit(settings.portal_base_url).scheme == "https",
        )

    def _serializer(self, salt: str) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self.secret, salt=f"caseloop.portal.{salt}")

    # Sessions
    def session_value(self, user_id: uuid.UUID, stamp: int) -> str:
        return self._serializer("session").dumps({"u": str(user_id), "p": stamp})

    def read_session(self, value: str) -> tuple[uuid.UUID, int] | None:
        try:
            data = self._serializer("session").loads(value, max_age=self.session_seconds)
            return uuid.UUID(data["u"]), int(data["p"])
        except (BadSignature, KeyError, TypeError, ValueError):
            return None

    # CSRF
    def csrf_token(self, cookie: str) -> str:
        return hmac.new(self.secret, b"csrf:" + cookie.encode(), hashlib.sha256).hexdigest()

    def csrf_valid(self, cookie: str | None, token: str | None) -> bool:
        if not cookie or not token:
            return False
        return hmac.compare_digest(self.csrf_token(cookie), token)

    # Set-password links
    def password_token(self, user_id: uuid.UUID, stamp: int) -> str:
        return self._serializer("password").dumps({"u": str(user_id), "p": stamp})

    def read_password_token(self, token: str) -> tuple[uuid.UUID, int] | None:
        try:
            data = self._serializer("password").loads(token, max_age=self.link_seconds)
            return uuid.UUID(data["u"]), int(data["p"])
        except (BadSignature, KeyError, TypeError, ValueError):
            return None

    def set_cookie(self, response: Response, name: str, value: str, max_age: int | None) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=PREFIX,
            httponly=True,
            samesite="lax",
            secure=self.secure,
        )


def signer(request: Request) -> Signer:
    """The app's signer; 503 ``portal_not_configured`` without PORTAL_SECRET_KEY."""
    value: Signer | None = request.app.state.portal_signer
    if value is None:
        raise not_configured()
    return value


def csrf_cookie(request: Request) -> str:
    """This visitor's CSRF cookie value, minted for this request when it has none yet (the
    response sets it: ``remember_csrf``)."""
    value = request.cookies.get(CSRF_COOKIE)
    if not value or len(value) > 64:
        value = getattr(request.state, "new_csrf", None) or secrets.token_urlsafe(24)
        request.state.new_csrf = value
    return value


def remember_csrf(request: Request, response: Response) -> None:
    """Set the CSRF cookie minted during this request, if any."""
    new = getattr(request.state, "new_csrf", None)
    if new:
        signer(request).set_cookie(response, CSRF_COOKIE, new, max_age=None)


async def check_csrf(request: Request) -> None:
    """403 ``csrf_refused`` unless the form's token matches this visitor's CSRF cookie."""
    form = await request.form()
    token = form.get(CSRF_FIELD)
    if not signer(request).csrf_valid(
        request.cookies.get(CSRF_COOKIE), token if isinstance(token, str) else None
    ):
        raise csrf_refused()


def safe_next(value: str | None) -> str:
    """Where to go after sign-in: a path inside the portal, never another site."""
    if value and value.startswith(PREFIX + "/") and not value.startswith("//"):
        parts = urlsplit(value)
        if not parts.scheme and not parts.netloc and "\\" not in value:
            return value
    return PREFIX + "/tasks"


async def current_user(request: Request) -> Principal:
    """The signed-in user of this page; ``SignInRequired`` (a redirect to sign-in) otherwise."""
    keys = signer(request)
    raw = request.cookies.get(SESSION_COOKIE)
    session_data = keys.read_session(raw) if raw else None
    principal = None
    if session_data is not None:
        user_id, stamp = session_data
        async with request.app.state.sessions() as session:
            principal = await principal_for_session(session=session, user_id=user_id, stamp=stamp)
    if principal is None:
        path = request.url.path
        if request.url.query:
            path += "?" + request.url.query
        raise SignInRequired(path if request.method == "GET" else PREFIX + "/tasks")
    request.state.principal = principal
    return principal


PortalUser = Annotated[Principal, Depends(current_user)]


def client_address(request: Request) -> str:
    """The address failed sign-ins are counted against (the peer; a proxy in front must pass
    the client's own address through uvicorn's --forwarded-allow-ips)."""
    return request.client.host if request.client else ""


def session_cookie_value(request: Request) -> str | None:
    return request.cookies.get(SESSION_COOKIE)


def form_fields(form: Any) -> dict[str, str]:
    """A form's text fields but its CSRF token: what a refused form shows again."""
    return {k: v for k, v in form.items() if isinstance(v, str) and k != CSRF_FIELD}


def form_text(form: Any, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""
