"""The `caseloop` command creates organisations, users and keys, and rejects bad input."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.enums import OrgKind
from store.accounts import principal_for_key
from store.models import ApiKey, Organisation

CASELOOP = str(Path(sys.executable).parent / "caseloop")


def caseloop(
    database_url: str, *args: str, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url, **(extra or {})}
    return subprocess.run([CASELOOP, *args], env=env, capture_output=True, text=True, timeout=60)


async def test_org_user_and_key_commands_print_ids_and_a_working_key(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    org = caseloop(
        database_url,
        "org",
        "create",
        "--kind",
        "partner",
        "--name",
        "Inkasso A/S",
        "--country",
        "dk",
        "--timezone",
        "Europe/Copenhagen",
    )
    assert org.returncode == 0, org.stderr
    org_id = uuid.UUID(org.stdout.strip())
    user = caseloop(
        database_url, "user", "create", "--org", str(org_id), "--email", "Bo@Inkasso.dk"
    )
    assert user.returncode == 0, user.stderr
    user_id = uuid.UUID(user.stdout.strip())
    key = caseloop(database_url, "key", "create", "--user", str(user_id))
    assert key.returncode == 0, key.stderr
    secret = key.stdout.strip()
    assert secret.startswith("clk_")

    async with sessions() as session:
        principal = await principal_for_key(session=session, key=secret)
        stored = await session.scalar(select(ApiKey.key_hash))
    assert principal is not None
    assert (principal.org_id, principal.user_id, principal.role) == (
        org_id,
        user_id,
        OrgKind.PARTNER,
    )
    assert principal.country == "DK"
    assert stored is not None and secret not in stored, "only a hash of the key is stored"


async def test_bad_org_input_exits_2_with_a_clear_message_and_creates_nothing(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    bad_country = caseloop(
        database_url,
        "org",
        "create",
        "--kind",
        "creditor",
        "--name",
        "X",
        "--country",
        "XX",
        "--timezone",
        "Europe/Copenhagen",
    )
    assert bad_country.returncode == 2
    assert "country 'XX'" in bad_country.stderr
    bad_zone = caseloop(
        database_url,
        "org",
        "create",
        "--kind",
        "creditor",
        "--name",
        "X",
        "--country",
        "DK",
        "--timezone",
        "Mars/Olympus",
    )
    assert bad_zone.returncode == 2
    assert "timezone 'Mars/Olympus'" in bad_zone.stderr
    bad_kind = caseloop(
        database_url,
        "org",
        "create",
        "--kind",
        "bank",
        "--name",
        "X",
        "--country",
        "DK",
        "--timezone",
        "Europe/Copenhagen",
    )
    assert bad_kind.returncode == 2
    no_org = caseloop(
        database_url, "user", "create", "--org", str(uuid.uuid4()), "--email", "a@b.c"
    )
    assert no_org.returncode == 2
    assert "no organisation" in no_org.stderr
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Organisation)) == 0


async def test_user_create_sets_a_password_or_prints_a_set_password_link(
    database_url: str, sessions: async_sessionmaker[AsyncSession]
) -> None:
    import datetime as dt

    from portal.security import Signer
    from settings import Settings
    from store.passwords import SignedIn, SignInLimits, sign_in
    from tests.support import TEST_PORTAL_SECRET_KEY

    org = caseloop(
        database_url,
        "org",
        "create",
        "--kind",
        "creditor",
        "--name",
        "Acme",
        "--country",
        "DK",
        "--timezone",
        "Europe/Copenhagen",
    )
    org_id = org.stdout.strip()
    with_password = caseloop(
        database_url,
        "user",
        "create",
        "--org",
        org_id,
        "--email",
        "pw@acme.example",
        "--password",
        "a long enough passphrase",
    )
    assert with_password.returncode == 0, with_password.stderr
    limits = SignInLimits(5, 20, dt.timedelta(minutes=15), dt.timedelta(minutes=15))
    async with sessions() as session:
        signed_in = await sign_in(
            session=session,
            email="pw@acme.example",
            password="a long enough passphrase",
            address="",
            limits=limits,
        )
    assert isinstance(signed_in, SignedIn)

    linked = caseloop(
        database_url,
        "user",
        "create",
        "--org",
        org_id,
        "--email",
        "link@acme.example",
        extra={"PORTAL_SECRET_KEY": TEST_PORTAL_SECRET_KEY},
    )
    assert linked.returncode == 0, linked.stderr
    user_id = uuid.UUID(linked.stdout.strip())  # standard output is the id alone, for scripts
    link = linked.stderr.split("set-password link: ")[1].strip()
    token = link.rsplit("/password/", 1)[1]
    signer = Signer.from_settings(
        Settings(portal_secret_key=TEST_PORTAL_SECRET_KEY, _env_file=None)  # type: ignore[call-arg]
    )
    assert signer is not None and signer.read_password_token(token) == (user_id, 0)

    short = caseloop(
        database_url,
        "user",
        "create",
        "--org",
        org_id,
        "--email",
        "short@acme.example",
        "--password",
        "short",
    )
    assert short.returncode == 2 and "at least 10 characters" in short.stderr
