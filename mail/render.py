"""Render an e-mail's text and HTML bodies from its Jinja2 templates (mail/templates).

Each template ``<name>.txt`` / ``<name>.html`` extends ``base.txt`` / ``base.html``: the portal's
name and colours, and a footer saying why the recipient gets the e-mail, with the unsubscribe
link. HTML is autoescaped; text is not (it is never shown as HTML).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from domain.mail import CATEGORIES, Email, MailCategory, Recipient
from mail.unsubscribe import unsubscribe_token

TEMPLATES = Path(__file__).parent / "templates"
PORTAL_NAME = "caseloop"
# The portal's colours (portal/static/portal.css); e-mail clients need them inline.
COLOURS = {"ink": "#1d2430", "muted": "#5a6472", "line": "#d6dbe2", "accent": "#1f5fbf"}

_environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,  # a context the template does not get is an error, not a blank
    keep_trailing_newline=True,
)


def preferences_url(portal_base_url: str, category: MailCategory | None = None) -> str:
    """The portal's preferences page (behind sign-in), opened at ``category``."""
    query = f"?{urlencode({'category': category.value})}" if category is not None else ""
    return f"{portal_base_url.rstrip('/')}/preferences{query}"


def unsubscribe_url(
    portal_base_url: str,
    recipient: Recipient,
    category: MailCategory,
    *,
    secret: str | None = None,
) -> str:
    """Where ``recipient`` turns ``category`` off: the ``List-Unsubscribe`` header and every
    footer link; the one place that builds it. For a caseloop user, with a signing ``secret``
    (``Settings.unsubscribe_secret``): the signed link ``<portal>/unsubscribe?token=...``
    (mail/unsubscribe.py), which works without signing in, as a page (GET) and as the RFC 8058
    one-click target (POST). Otherwise the preferences page, behind sign-in."""
    return _unsubscribe(portal_base_url, recipient, category, secret)[0]


def _unsubscribe(
    portal_base_url: str, recipient: Recipient, category: MailCategory, secret: str | None
) -> tuple[str, bool]:
    """``unsubscribe_url``, and whether it is the signed (one-click) link."""
    if recipient.user_id is None or secret is None:
        return preferences_url(portal_base_url, category), False
    token = unsubscribe_token(secret, recipient.user_id, category)
    return f"{portal_base_url.rstrip('/')}/unsubscribe?{urlencode({'token': token})}", True


@dataclass(frozen=True)
class Rendered:
    text: str
    html: str
    unsubscribe_url: str
    # Whether ``unsubscribe_url`` takes an RFC 8058 one-click POST (the signed link does).
    one_click: bool


def render(
    email: Email,
    recipient: Recipient,
    *,
    portal_base_url: str,
    unsubscribe_secret: str | None = None,
) -> Rendered:
    """``recipient``'s copy of ``email``: both bodies and its unsubscribe link (signed with
    ``unsubscribe_secret``: ``unsubscribe_url``)."""
    unsubscribe, one_click = _unsubscribe(
        portal_base_url, recipient, email.category, unsubscribe_secret
    )
    context: dict[str, Any] = {
        **email.context,
        "portal_name": PORTAL_NAME,
        "portal_url": portal_base_url,
        "colours": COLOURS,
        "subject": email.subject,
        "link": email.link,
        "recipient_name": recipient.name,
        "reason": CATEGORIES[email.category].reason,
        "unsubscribe_url": unsubscribe,
    }
    text = _environment.get_template(f"{email.template}.txt").render(context)
    html = _environment.get_template(f"{email.template}.html").render(context)
    return Rendered(
        text=text,
        html=html,
        unsubscribe_url=unsubscribe,
        one_click=one_click,
    )
