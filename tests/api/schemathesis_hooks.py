"""schemathesis hooks for the contract test (``hooks`` in schemathesis.toml): test data for the
rules no schema can express, because they depend on stored state or span several fields.
docs/api.md lists them; each is tested on its own elsewhere. A generated value that is invalid
anyway is left as generated, to be refused.

- An ``Idempotency-Key`` replays or refuses (422 ``idempotency_key_reused``) a second request
  with the same key: every valid key becomes a fresh one.
- A ``creditorReference`` already used with other data is refused (422
  ``duplicate_creditor_reference``): valid ones become fresh ones.
- Ids in a body must name the caller's things (422 otherwise): ``bankAccountId`` becomes the
  account the test made (``CASELOOP_BANK_ACCOUNT_ID``), ``creditorDivisionId`` its division
  (``CASELOOP_DIVISION_ID``), ``userId`` the caller
  (``CASELOOP_USER_ID``, else null: unassigned), a chat post's ``userEmail`` the caller's
  (``CASELOOP_USER_EMAIL``, else null), ``partnerId``/``partnerIds`` a real partner
  (``CASELOOP_PARTNER_ID``), ``attachmentIds`` none (files are uploaded with the message).
- A creditor names the partner of a lead thread (the JSON schema says so; a form cannot, see
  ``api.chat_posts.message_body``): a form for one without ``partnerId`` gets the partner.
- A case's ``date`` must not lie in the future, and ``dueDate`` not before ``date`` nor more
  than the longest payment term after it (``domain.plausible``); a postponed task's ``deadline``
  must lie in the future (422 ``invalid_deadline``). A PATCH does not know the stored date, so
  generated case dates lie within the last year, which keeps a due date alone consistent.
- An IBAN must follow its country's rules (``schwifty``): the ``iban`` format draws real ones.
- A time zone must be one ``zoneinfo`` knows: the ``time-zone`` format draws those.
- An e-mail address must be one a mail can reach (``email-validator``, behind pydantic's
  ``EmailStr``: no special-use domain such as ``.test``): the ``email`` format draws those.
- An ``after`` cursor must be one the list gave out, and comes without ``page`` (422
  otherwise): generated cursors are left out of the query.
- Text that is not empty must show a visible character (``domain.base.invisible_text``), which
  the schema's text pattern does not say: a generated string of only control, format or
  space characters in a body becomes ``x``.
- A webhook's ``url`` must be one caseloop may post to (https, no private address:
  ``outbound.check_url``, 422 ``webhook_url_unsafe``): a generated one becomes
  ``WEBHOOK_URL``.
- A user changes only the e-mail categories of their side (``domain.mail.categories_of``, 422
  otherwise): a generated category becomes one of the caller's (``CASELOOP_ROLE``).
- An uploaded file's bytes must be of its declared type (``api.filetypes``): a generated file
  becomes a small real PDF, the first type the schema names for it.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from typing import Any
from zoneinfo import available_timezones

import schemathesis
from hypothesis import strategies as st
from pydantic import EmailStr, TypeAdapter, ValidationError

from api.idempotency import HEADER, MAX_KEY_LENGTH
from api.routes.chat import LEAD_THREADS
from domain.base import invisible_text
from domain.enums import OrgKind
from domain.mail import MailCategory, categories_of
from domain.plausible import MAX_PAYMENT_TERM
from tests.files import PDF

CASE_BODIES = {("POST", "/api/cases"), ("PATCH", "/api/cases/{case_id}")}
WEBHOOK_BODIES = {("POST", "/api/webhooks"), ("PATCH", "/api/webhooks/{webhook_id}")}
WEBHOOK_URL = "https://hooks.example.com/caseloop"

PREFERENCES = "/api/me/notification-preferences"


def _own_categories(body: dict[str, Any]) -> None:
    role = os.environ.get("CASELOOP_ROLE")
    theirs = categories_of(OrgKind(role)) if role else []
    choices = body.get("preferences")
    if not theirs or not isinstance(choices, list):
        return
    for n, choice in enumerate(choices):
        category = choice.get("category") if isinstance(choice, dict) else None
        if isinstance(category, str) and category in set(MailCategory):
            choice["category"] = theirs[n % len(theirs)].value


def _is_uuid(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _date(value: object) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _timestamp(value: object) -> bool:
    try:
        return isinstance(value, str) and dt.datetime.fromisoformat(value).tzinfo is not None
    except ValueError:
        return False


def _case_dates(body: dict[str, Any], patch: bool) -> None:
    today = dt.date.today()
    earliest, yesterday = today - dt.timedelta(days=365), today - dt.timedelta(days=1)
    date, due = _date(body.get("date")), _date(body.get("dueDate"))
    if date is not None:
        date = min(max(date, earliest), yesterday)
        body["date"] = date.isoformat()
        if patch and "dueDate" not in body:
            due = date
    if due is not None:
        # Unchanged, the stored date lies within the last year; a changed one is ``date``.
        floor = date if date is not None else today
        ceiling = (date if date is not None else earliest) + MAX_PAYMENT_TERM
        body["dueDate"] = min(max(due, floor), ceiling).isoformat()


def _in_years(values: dict[str, Any] | None) -> None:
    """Dates and timestamps lie in 1900 to 2099 (domain/time.py); the schema says so in words only,
    since a pattern on top of a format filters out nearly every generated value."""
    for name, value in list((values or {}).items()):
        if not isinstance(value, str) or len(value) < 10 or value[4:5] != "-":
            continue
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            continue
        if not 1901 <= moment.year <= 2098:
            values[name] = value.replace(value[:4], "2026", 1)  # type: ignore[index]


def _visible(value: Any) -> Any:
    """``value`` with every string that shows nothing replaced by ``x`` (lists and objects
    walked)."""
    if isinstance(value, str):
        return "x" if invisible_text(value) else value
    if isinstance(value, list):
        return [_visible(item) for item in value]
    if isinstance(value, dict):
        return {key: _visible(item) for key, item in value.items()}
    return value


def _real_files(body: dict[str, Any], case: Any) -> None:
    types = getattr(case, "multipart_content_types", None)
    for name, value in list(body.items()):
        if isinstance(types, dict) and name in types:
            types[name] = "application/pdf"
        if isinstance(value, bytes | bytearray):
            body[name] = PDF
        elif (
            isinstance(value, list)
            and value
            and all(isinstance(v, bytes | bytearray) for v in value)
        ):
            body[name] = [PDF for _ in value]


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    _in_years(case.query)
    if isinstance(case.query, dict):
        case.query.pop("after", None)
    headers = case.headers or {}
    key = headers.get(HEADER)
    if isinstance(key, str) and key.strip() and len(key) <= MAX_KEY_LENGTH and "\x00" not in key:
        headers[HEADER] = str(uuid.uuid4())
    body = case.body
    if not isinstance(body, dict):
        return
    _in_years(body)
    for name, value in list(body.items()):
        body[name] = _visible(value)
    if "multipart" in str(case.media_type):
        _real_files(body, case)
    reference = body.get("creditorReference")
    if isinstance(reference, str) and reference.strip() and len(reference) <= 100:
        body["creditorReference"] = uuid.uuid4().hex
    account = os.environ.get("CASELOOP_BANK_ACCOUNT_ID")
    if account and _is_uuid(body.get("bankAccountId")):
        body["bankAccountId"] = account
    division = os.environ.get("CASELOOP_DIVISION_ID")
    if division and _is_uuid(body.get("creditorDivisionId")):
        body["creditorDivisionId"] = division
    if _is_uuid(body.get("userId")):
        body["userId"] = os.environ.get("CASELOOP_USER_ID") or None
    email = body.get("userEmail")
    if isinstance(email, str) and 0 < len(email) <= 320 and "\x00" not in email:
        body["userEmail"] = os.environ.get("CASELOOP_USER_EMAIL") or None
    partner = os.environ.get("CASELOOP_PARTNER_ID")
    if partner and _is_uuid(body.get("partnerId")):
        body["partnerId"] = partner
    ids = body.get("partnerIds")
    if partner and isinstance(ids, list) and ids and all(_is_uuid(i) for i in ids):
        body["partnerIds"] = [partner]
    if partner and body.get("threadType") in LEAD_THREADS and "partnerId" not in body:
        body["partnerId"] = partner
    ids = body.get("attachmentIds")
    if isinstance(ids, list) and all(_is_uuid(i) for i in ids):
        body["attachmentIds"] = []
    if case.path == "/api/tasks/{task_id}/postpone" and _timestamp(body.get("deadline")):
        body["deadline"] = (dt.datetime.now(dt.UTC) + dt.timedelta(days=7)).isoformat()
    if (case.method.upper(), case.path) in CASE_BODIES:
        _case_dates(body, patch=case.method.upper() == "PATCH")
    if case.path == PREFERENCES:
        _own_categories(body)
    if (case.method.upper(), case.path) in WEBHOOK_BODIES and isinstance(body.get("url"), str):
        body["url"] = WEBHOOK_URL


_EMAIL: TypeAdapter[str] = TypeAdapter(EmailStr)


def _accepted_email(value: str) -> bool:
    try:
        _EMAIL.validate_python(value)
    except ValidationError:
        return False
    return True


# "format": "email" (a debtor's, a division's office): addresses EmailStr accepts.
schemathesis.openapi.format("email", st.emails().filter(_accepted_email))

# "format": "time-zone" (PATCH /api/users/me): IANA names zoneinfo knows.
schemathesis.openapi.format("time-zone", st.sampled_from(sorted(available_timezones())))

# "format": "iban" (POST /api/bank-accounts): real IBANs, for positive tests to get past.
schemathesis.openapi.format(
    "iban",
    st.sampled_from(
        [
            "DK5000400440116243",
            "DE89370400440532013000",
            "GB29NWBK60161331926819",
            "FR1420041010050500013M02606",
            "NL91ABNA0417164300",
            "NO9386011117947",
            "ES9121000418450200051332",
        ]
    ),
)
