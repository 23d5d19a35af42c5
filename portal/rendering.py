"""Pages from Jinja2 templates that extend one layout (templates/base.html).

Every page gets the signed-in user (if any), this visitor's CSRF token for its forms and the
portal's security headers: no framing, no inline scripts, nothing loaded from another origin,
and no caching of a signed-in page.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from api.pagination import COUNT_LIMIT
from domain.enums import OrgKind
from portal.security import PREFIX, csrf_cookie, remember_csrf, signer

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

environment = Environment(
    loader=PackageLoader("portal", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _local(value: dt.datetime | None, zone: str, fmt: str = "%d %b %Y %H:%M") -> str:
    if value is None:
        return ""
    return value.astimezone(ZoneInfo(zone)).strftime(fmt)


environment.filters["local"] = _local
environment.globals["PREFIX"] = PREFIX


def render(
    request: Request, template: str, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """The page ``template`` for this request, with its CSRF cookie set when minted now."""
    principal = getattr(request.state, "principal", None)
    keys = signer(request)
    context.setdefault("section", None)
    page = environment.get_template(template).render(
        request=request,
        user=principal,
        is_creditor=principal is not None and principal.role is OrgKind.CREDITOR,
        is_partner=principal is not None and principal.role is OrgKind.PARTNER,
        is_ops=principal is not None and principal.role is OrgKind.OPS,
        zone=principal.timezone if principal is not None else "UTC",
        csrf_token=keys.csrf_token(csrf_cookie(request)),
        **context,
    )
    response = HTMLResponse(page, status_code=status_code, headers=SECURITY_HEADERS)
    remember_csrf(request, response)
    return response


def redirect(path: str) -> RedirectResponse:
    """See other: after a form, the browser loads ``path`` with GET (post/redirect/get)."""
    return RedirectResponse(path, status_code=303, headers=SECURITY_HEADERS)


def list_paging(
    path: str, query: dict[str, str], page: int, total: int, more: bool, noun: str
) -> dict[str, Any]:
    """What a paged list page shows about its pages (templates/_list.html): the count (up to
    the API's COUNT_LIMIT), and the links to the pages before and after this one."""
    shown = f"{total}" if total <= COUNT_LIMIT else f"more than {COUNT_LIMIT}"

    def url(number: int) -> str:
        return f"{PREFIX}{path}?" + urlencode({**query, "page": number})

    return {
        "total_label": f"{shown} {noun}{'s' if total != 1 else ''}"
        + (f", page {page}" if page > 1 or more else ""),
        "previous_url": url(page - 1) if page > 1 else None,
        "next_url": url(page + 1) if more else None,
    }
