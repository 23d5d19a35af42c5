"""schemathesis hooks for the contract test (``hooks`` in schemathesis.toml): test data for what
depends on state, which no schema can express.

- An ``Idempotency-Key`` replays or refuses (422 ``idempotency_key_reused``) a second request
  with the same key. Every valid key schemathesis generates is made unique; invalid ones (too
  long, blank, NUL) are left as generated, to be refused.
- A ``creditorReference`` already used with other data is refused (422
  ``duplicate_creditor_reference``): valid ones are made unique too.
- A ``bankAccountId`` must name one of the caller's bank accounts (422 otherwise, like any id in
  a body that is not yours). Generated ones become the account the test made
  (``CASELOOP_BANK_ACCOUNT_ID``), when there is one.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import schemathesis
from hypothesis import strategies as st

from api.idempotency import HEADER, MAX_KEY_LENGTH


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    headers = case.headers or {}
    key = headers.get(HEADER)
    if isinstance(key, str) and key.strip() and len(key) <= MAX_KEY_LENGTH and "\x00" not in key:
        headers[HEADER] = f"{uuid.uuid4()}"
    account = os.environ.get("CASELOOP_BANK_ACCOUNT_ID")
    body = case.body
    reference = body.get("creditorReference") if isinstance(body, dict) else None
    if isinstance(reference, str) and reference.strip() and len(reference) <= 100:
        body["creditorReference"] = uuid.uuid4().hex
    if account and isinstance(body, dict) and _is_uuid(body.get("bankAccountId")):
        body["bankAccountId"] = account


def _is_uuid(value: object) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return isinstance(value, str)


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
