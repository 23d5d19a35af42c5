"""Organisations, users and API keys: the queries behind authentication and the CLI."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.accounts import OrgRef
from domain.cases import COUNTRY_CODES
from domain.enums import OrgKind
from store.models import ApiKey, Organisation, User

KEY_PREFIX = "clk_"


class AccountError(ValueError):
    """Bad input to an account command; the message says what to fix."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user behind an API key and their organisation."""

    user_id: uuid.UUID
    org_id: uuid.UUID
    role: OrgKind
    country: str
    timezone: str
    org_name: str = ""
    user_label: str = ""  # name, else e-mail: how history and tasks name the user
    # The user's own name and e-mail as the key's lookup found them ("" when not known): how a
    # chat message the caller just posted names its author without reading the user back.
    user_name: str | None = None
    user_email: str = ""

    @property
    def org_ref(self) -> OrgRef:
        return OrgRef(
            id=self.org_id, name=self.org_name, country=self.country, timezone=self.timezone
        )


async def contract_signed(*, session: AsyncSession, org_id: uuid.UUID) -> bool:
    """Whether the organisation's collection contract is signed, as its account workflow
    projected it (a signature is final)."""
    signed_at = await session.scalar(
        select(Organisation.contract_signed_at).where(Organisation.id == org_id)
    )
    return signed_at is not None


def hash_key(key: str) -> str:
    """Keys are 256-bit random secrets, so a plain SHA-256 is a safe, indexable digest."""
    return hashlib.sha256(key.encode()).hexdigest()


async def create_org(
    *, session: AsyncSession, kind: OrgKind, name: str, country: str, timezone: str
) -> Organisation:
    name = name.strip()
    if not name:
        raise AccountError("name must not be empty")
    country = country.upper()
    if country not in COUNTRY_CODES:
        raise AccountError(f"country {country!r} is not an ISO 3166-1 alpha-2 code")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise AccountError(f"timezone {timezone!r} is not an IANA time zone") from exc
    org = Organisation(
        id=uuid.uuid4(),
        kind=kind.value,
        name=name,
        country=country,
        timezone=timezone,
        created_at=dt.datetime.now(dt.UTC),
    )
    session.add(org)
    await session.flush()
    return org


async def create_user(
    *, session: AsyncSession, org_id: uuid.UUID, email: str, name: str | None = None
) -> User:
    if await session.get(Organisation, org_id) is None:
        raise AccountError(f"no organisation {org_id}")
    email = email.strip().lower()
    if "@" not in email:
        raise AccountError(f"{email!r} is not an e-mail address")
    if await session.scalar(select(User.id).where(User.email == email)) is not None:
        raise AccountError(f"a user with e-mail {email} already exists")
    user = User(
        id=uuid.uuid4(),
        org_id=org_id,
        email=email,
        name=name,
        active=True,
        created_at=dt.datetime.now(dt.UTC),
    )
    session.add(user)
    await session.flush()
    return user


async def create_key(*, session: AsyncSession, user_id: uuid.UUID) -> tuple[ApiKey, str]:
    """A new key for a user; the secret is returned once and never stored."""
    user = await session.get(User, user_id)
    if user is None or not user.active:
        raise AccountError(f"no active user {user_id}")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        id=uuid.uuid4(),
        user_id=user_id,
        key_hash=hash_key(secret),
        prefix=secret[:8],
        created_at=dt.datetime.now(dt.UTC),
        revoked_at=None,
    )
    session.add(key)
    await session.flush()
    return key, secret


PRINCIPAL_COLUMNS = (
    User.id,
    Organisation.id,
    Organisation.kind,
    Organisation.country,
    Organisation.timezone,
    Organisation.name,
    User.name,
    User.email,
)


def principal_from_row(row: Any) -> Principal:
    """A principal from the first eight columns of a row selected with PRINCIPAL_COLUMNS."""
    user_id, org_id, kind, country, timezone, org_name, user_name, email = row[:8]
    return Principal(
        user_id,
        org_id,
        OrgKind(kind),
        country,
        timezone,
        org_name,
        user_name or email,
        user_name=user_name,
        user_email=email,
    )


# ``principal_for_key``'s statement, built once (the key's hash is bound per call): a request
# whose key is not cached runs it, and building it cost about as much as running it.
_PRINCIPAL_OF_KEY = (
    select(*PRINCIPAL_COLUMNS)
    .select_from(ApiKey)
    .join(User, User.id == ApiKey.user_id)
    .join(Organisation, Organisation.id == User.org_id)
    .where(
        ApiKey.key_hash == bindparam("key_hash", type_=ApiKey.key_hash.type),
        ApiKey.revoked_at.is_(None),
        User.active,
    )
)


async def principal_for_key(*, session: AsyncSession, key: str) -> Principal | None:
    """The principal a key belongs to, or None for an unknown, revoked or inactive key."""
    row = (await session.execute(_PRINCIPAL_OF_KEY, {"key_hash": hash_key(key)})).first()
    return None if row is None else principal_from_row(row)


@dataclass(frozen=True)
class Member:
    id: uuid.UUID
    label: str  # name, else e-mail


async def active_members(*, session: AsyncSession, org_id: uuid.UUID) -> list[Member]:
    """The organisation's active users, by name (who a task can be assigned to)."""
    rows = await session.execute(
        select(User.id, User.name, User.email)
        .where(User.org_id == org_id, User.active)
        .order_by(User.name, User.email)
    )
    return [Member(user_id, name or email) for user_id, name, email in rows]


async def partner_organisations(*, session: AsyncSession) -> list[tuple[uuid.UUID, str]]:
    """Every partner organisation, by name (whom ops assign a case to or ask for quotes)."""
    rows = await session.execute(
        select(Organisation.id, Organisation.name)
        .where(Organisation.kind == OrgKind.PARTNER.value)
        .order_by(Organisation.name)
    )
    return [(org_id, name) for org_id, name in rows]
