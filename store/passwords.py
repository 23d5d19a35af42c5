"""Portal passwords: argon2 hashes, the sign-in check and its limit on failed attempts.

A password is hashed with argon2id (``pwdlib``'s recommended hasher). Failed sign-ins are counted
per account (``user:<e-mail>``) and per client address (``addr:<ip>``) in the database, so every
API process enforces the same limit: after ``max_failures`` failures within ``window`` the key is
locked for ``lockout``, whether or not the password is right then. A success clears the
account's count (not the address's: one right password must not reset a spray from one address).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from dataclasses import dataclass

from pwdlib import PasswordHash
from sqlalchemy import case, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from store.accounts import PRINCIPAL_COLUMNS, AccountError, Principal, principal_from_row
from store.models import Organisation, SignInFailures, User

MIN_LENGTH = 10
MAX_LENGTH = 256

_hasher = PasswordHash.recommended()
# Verified when the e-mail is unknown, so an unknown address costs the same time as a wrong
# password and the answer does not tell which e-mail addresses have accounts.
_DUMMY_HASH = _hasher.hash("caseloop: no such user")


@dataclass(frozen=True)
class SignInLimits:
    max_failures_per_account: int
    max_failures_per_address: int
    window: dt.timedelta
    lockout: dt.timedelta


@dataclass(frozen=True)
class SignedIn:
    principal: Principal
    password_stamp: int  # ends the session when the password changes (``password_stamp``)


@dataclass(frozen=True)
class Locked:
    until: dt.datetime


def check_password_rules(password: str, email: str) -> None:
    """AccountError saying what is wrong with a new password (NIST 800-63B: length, not
    composition rules)."""
    if len(password) < MIN_LENGTH:
        raise AccountError(f"the password must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise AccountError(f"the password may have at most {MAX_LENGTH} characters")
    if password.strip().lower() == email.strip().lower():
        raise AccountError("the password must not be the e-mail address")


def password_stamp(changed_at: dt.datetime | None) -> int:
    """The password's version as an integer (microseconds since the epoch; 0 for none)."""
    if changed_at is None:
        return 0
    return int(changed_at.timestamp() * 1_000_000)


async def set_password(*, session: AsyncSession, user_id: uuid.UUID, password: str) -> None:
    """Hash and store a new password; every session and set-password link issued before ends."""
    user = await session.get(User, user_id)
    if user is None or not user.active:
        raise AccountError(f"no active user {user_id}")
    check_password_rules(password, user.email)
    user.password_hash = await asyncio.to_thread(_hasher.hash, password)
    previous = user.password_changed_at
    now = dt.datetime.now(dt.UTC)
    # Strictly later than the last change, so the stamp changes even on a coarse clock.
    if previous is not None and now <= previous:
        now = previous + dt.timedelta(microseconds=1)
    user.password_changed_at = now
    await session.flush()


async def user_stamp(*, session: AsyncSession, user_id: uuid.UUID) -> tuple[str, int] | None:
    """An active user's e-mail and password stamp (set-password links carry the stamp)."""
    row = (
        await session.execute(
            select(User.email, User.password_changed_at).where(User.id == user_id, User.active)
        )
    ).first()
    return None if row is None else (row[0], password_stamp(row[1]))


async def user_by_email(*, session: AsyncSession, email: str) -> tuple[uuid.UUID, int] | None:
    """An active user's id and password stamp, by e-mail."""
    row = (
        await session.execute(
            select(User.id, User.password_changed_at).where(
                User.email == email.strip().lower(), User.active
            )
        )
    ).first()
    return None if row is None else (row[0], password_stamp(row[1]))


async def principal_of_user(*, session: AsyncSession, user_id: uuid.UUID) -> Principal:
    """The principal of an existing user (the CLI's demo, reusing its accounts)."""
    row = (
        await session.execute(
            select(*PRINCIPAL_COLUMNS)
            .select_from(User)
            .join(Organisation, Organisation.id == User.org_id)
            .where(User.id == user_id)
        )
    ).one()
    return principal_from_row(row)


async def principal_for_session(
    *, session: AsyncSession, user_id: uuid.UUID, stamp: int
) -> Principal | None:
    """The principal of a signed-in session, or None when the user is gone, deactivated or
    changed the password since the session began."""
    row = (
        await session.execute(
            select(*PRINCIPAL_COLUMNS, User.password_changed_at)
            .select_from(User)
            .join(Organisation, Organisation.id == User.org_id)
            .where(User.id == user_id, User.active, User.password_hash.is_not(None))
        )
    ).first()
    if row is None or password_stamp(row[8]) != stamp:
        return None
    return principal_from_row(row)


async def sign_in(
    *,
    session: AsyncSession,
    email: str,
    password: str,
    address: str,
    limits: SignInLimits,
    now: dt.datetime | None = None,
) -> SignedIn | Locked | None:
    """Check an e-mail and password. None for a wrong pair (counted as a failure), ``Locked``
    while the account or the address is over its limit, else the signed-in principal."""
    now = now or dt.datetime.now(dt.UTC)
    email = email.strip().lower()
    keys = {f"user:{email}": limits.max_failures_per_account}
    if address:
        keys[f"addr:{address}"] = limits.max_failures_per_address
    locks = (
        await session.scalars(
            select(SignInFailures.locked_until).where(
                SignInFailures.key.in_(keys), SignInFailures.locked_until > now
            )
        )
    ).all()
    until = [lock for lock in locks if lock is not None]
    if until:
        return Locked(max(until))
    row = (
        await session.execute(
            select(*PRINCIPAL_COLUMNS, User.password_hash, User.password_changed_at)
            .select_from(User)
            .join(Organisation, Organisation.id == User.org_id)
            .where(User.email == email, User.active)
        )
    ).first()
    stored = row[8] if row is not None else None
    valid, new_hash = await asyncio.to_thread(
        _hasher.verify_and_update, password, stored or _DUMMY_HASH
    )
    if row is None or stored is None or not valid:
        for key, limit in keys.items():
            await _count_failure(session, key, limit, limits, now)
        await session.commit()
        return None
    if new_hash is not None:  # the hasher's parameters were raised since it was stored
        await session.execute(update(User).where(User.id == row[0]).values(password_hash=new_hash))
    await session.execute(delete(SignInFailures).where(SignInFailures.key == f"user:{email}"))
    await session.commit()
    return SignedIn(principal_from_row(row), password_stamp(row[9]))


async def _count_failure(
    session: AsyncSession, key: str, limit: int, limits: SignInLimits, now: dt.datetime
) -> None:
    """One more failure for ``key`` in one statement (concurrent failures all count); a count
    that started before the window began starts again at one."""
    window_start = now - limits.window
    for _ in range(2):
        table = SignInFailures
        fresh = table.window_started_at <= window_start
        failures = await session.scalar(
            update(table)
            .where(table.key == key)
            .values(
                failures=case((fresh, 1), else_=table.failures + 1),
                window_started_at=case((fresh, now), else_=table.window_started_at),
            )
            .returning(table.failures)
        )
        if failures is None:
            try:
                async with session.begin_nested():
                    session.add(
                        SignInFailures(
                            key=key, failures=1, window_started_at=now, locked_until=None
                        )
                    )
            except IntegrityError:  # another process inserted it first: count on that row
                continue
            failures = 1
        if failures >= limit:
            await session.execute(
                update(table).where(table.key == key).values(locked_until=now + limits.lockout)
            )
        return
