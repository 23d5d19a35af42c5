"""The signed token of an e-mail's unsubscribe link: it names a user and a category, and turns
that category off for that user without a sign-in (portal/pages/preferences.py).

Signed (itsdangerous, HMAC-SHA1 over the payload, with a salt of its own so no other token of
caseloop's can stand in for it) with ``Settings.unsubscribe_secret``: UNSUBSCRIBE_SECRET_KEY, else
PORTAL_SECRET_KEY. A token does not expire (an e-mail is read months later); changing the secret
revokes every token signed with the old one. A token can only turn a category off, never on,
so one that leaks lets its holder do what the e-mail's recipient could: stop that e-mail.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer

from domain.mail import MailCategory

SALT = "caseloop.mail.unsubscribe"


@dataclass(frozen=True)
class Unsubscribe:
    """What a good token asks: turn ``category`` off for ``user_id``."""

    user_id: uuid.UUID
    category: MailCategory


def _serializer(secret: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=SALT)


def unsubscribe_token(secret: str, user_id: uuid.UUID, category: MailCategory) -> str:
    return _serializer(secret).dumps([user_id.hex, category.value])


def read_unsubscribe_token(secret: str, token: str) -> Unsubscribe | None:
    """What ``token`` asks, or None for a token that is not one of ours (tampered with, signed
    with another secret, malformed, or naming a category that no longer exists)."""
    try:
        user_hex, category = _serializer(secret).loads(token)
        return Unsubscribe(user_id=uuid.UUID(hex=user_hex), category=MailCategory(category))
    except (BadSignature, TypeError, ValueError):
        return None
