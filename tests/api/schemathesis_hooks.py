"""schemathesis hooks for the contract test (``hooks`` in schemathesis.toml): test data for the
rules no schema can express, because they depend on stored state or span several fields.
docs/api.md lists them; each is tested on its own elsewhere. A generated value that is invalid
anyway is left as generated, to be refused.

- An ``Idempotency-Key`` replays or refuses (422 ``idempotency_key_reused``) a second request
  with the same key: every valid key becomes a fresh one.
- A ``creditorReference`` already used with other data is refused (422
  ``duplicate_creditor_reference``): valid ones become fresh ones.
- Ids in a body must name the caller's things (422 otherwise): ``bankAccountId`` becomes the
  account the test made (``CASELOOP_BANK_ACCOUNT_ID``), ``userId`` the caller
  (``CASELOOP_USER_ID``, else null: unassigned), ``partnerId``/``partnerIds`` a real partner
  (``CASELOOP_PARTNER_ID``), ``attachmentIds`` none (files are uploaded with the message).
- A creditor names the partner of a lead thread (the JSON schema says so; a form cannot, see
  ``api.routes.chat._message_body``): a form for one without ``partnerId`` gets the partner.
- A case's ``date`` must not lie in the future, and ``dueDate`` not before ``date``; a postponed
  task's ``deadline`` must lie in the future (422 ``invalid_deadline``).
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from typing import Any

import schemathesis
from hypothesis import strategies as st

from api.idempotency import HEADER, MAX_KEY_LENGTH
from api.routes.chat import LEAD_THREADS

CASE_BODIES = {("POST", "/api/cases"), ("PATCH", "/api/cases/{case_id}")}


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
    yesterday = dt.date.today() - dt.timedelta(days=1)
    date, due = _date(body.get("date")), _date(body.get("dueDate"))
    if date is not None:
        date = min(date, yesterday)
        body["date"] = date.isoformat()
        if patch and "dueDate" not in body:
            due = date
    if due is not None:
        # Unchanged, the stored date is at most today; a changed one is ``date``.
        floor = date if date is not None else (yesterday + dt.timedelta(days=1))
        body["dueDate"] = max(due, floor).isoformat()


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    headers = case.headers or {}
    key = headers.get(HEADER)
    if isinstance(key, str) and key.strip() and len(key) <= MAX_KEY_LENGTH and "\x00" not in key:
        headers[HEADER] = str(uuid.uuid4())
    body = case.body
    if not isinstance(body, dict):
        return
    reference = body.get("creditorReference")
    if isinstance(reference, str) and reference.strip() and len(reference) <= 100:
        body["creditorReference"] = uuid.uuid4().hex
    account = os.environ.get("CASELOOP_BANK_ACCOUNT_ID")
    if account and _is_uuid(body.get("bankAccountId")):
        body["bankAccountId"] = account
    if _is_uuid(body.get("userId")):
        body["userId"] = os.environ.get("CASELOOP_USER_ID") or None
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


def _iban(country: str, bban: str) -> str:
    """An IBAN with the right check digits (ISO 13616 mod 97)."""
    digits = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    return f"{country}{98 - int(digits) % 97:02d}{bban}"


# "format": "iban" (POST /api/bank-accounts): valid IBANs, for positive tests to get past.
schemathesis.openapi.format(
    "iban",
    st.builds(
        _iban,
        st.sampled_from(["DK", "DE", "NL", "FR"]),
        st.text(alphabet="0123456789", min_size=14, max_size=22),
    ),
)
