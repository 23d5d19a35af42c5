"""schemathesis hooks for the contract test (``hooks`` in schemathesis.toml).

An ``Idempotency-Key`` replays or refuses (422 ``idempotency_key_reused``) a second request with
the same key: state no schema can express. So every valid key schemathesis generates is made
unique; invalid ones (too long, blank, NUL) are left as generated, to be refused.
"""

from __future__ import annotations

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
