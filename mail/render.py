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

from domain.mail import CATEGORY_REASONS, Email, MailCategory, Recipient

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


def unsubscribe_url(portal_base_url: str, recipient: Recipient, category: MailCategory) -> str:
    """Where ``recipient`` turns ``category`` off: the ``List-Unsubscribe`` header and every
    footer link. The one place that builds it (issue 13, item 4, makes it a signed link that
    works without signing in); until then the portal's preferences page for the category."""
    query = urlencode({"category": category.value})
    return f"{portal_base_url.rstrip('/')}/preferences?{query}"


@dataclass(frozen=True)
class Rendered:
    text: str
    html: str
    unsubscribe_url: str


def render(email: Email, recipient: Recipient, *, portal_base_url: str) -> Rendered:
    """``recipient``'s copy of ``email``: both bodies and its unsubscribe link."""
    unsubscribe = unsubscribe_url(portal_base_url, recipient, email.category)
    context: dict[str, Any] = {
        **email.context,
        "portal_name": PORTAL_NAME,
        "portal_url": portal_base_url,
        "colours": COLOURS,
        "subject": email.subject,
        "link": email.link,
        "recipient_name": recipient.name,
        "reason": CATEGORY_REASONS[email.category],
        "unsubscribe_url": unsubscribe,
    }
    text = _environment.get_template(f"{email.template}.txt").render(context)
    html = _environment.get_template(f"{email.template}.html").render(context)
    return Rendered(text=text, html=html, unsubscribe_url=unsubscribe)
