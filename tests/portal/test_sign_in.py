"""Signing in to the portal: passwords, sessions, CSRF, the limit on failures, set-password
links, and the wall between portal sessions and API keys."""

from __future__ import annotations

import datetime as dt
from urllib.parse import unquote

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.enums import OrgKind
from portal.security import CSRF_COOKIE, SESSION_COOKIE, Signer
from settings import Settings
from store.db import transaction
from store.models import SignInFailures, User
from store.passwords import set_password
from tests.portal.support import PASSWORD, csrf_of, post_form, sign_in, with_password
from tests.support import Actor, make_actor


def session_cookie_header(response: httpx.Response) -> str:
    headers = [h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE)]
    assert len(headers) == 1, response.headers
    return headers[0]


async def test_a_page_without_a_session_redirects_to_sign_in_and_back(
    portal: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    email = await with_password(sessions, creditor)

    page = await portal.get("/portal/tasks?status=Solved")
    assert page.status_code == 303
    assert unquote(page.headers["location"]) == "/portal/sign-in?next=/portal/tasks?status=Solved"

    signed_in = await sign_in(portal, email, next_path="/portal/tasks?status=Solved")
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/portal/tasks?status=Solved"
    cookie = session_cookie_header(signed_in).lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" in cookie
    assert "path=/portal" in cookie

    tasks = await portal.get("/portal/tasks")
    assert tasks.status_code == 200
    assert "Sign out" in tasks.text and creditor.principal.org_name in tasks.text
    assert tasks.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in tasks.headers["content-security-policy"]


async def test_the_sign_in_form_labels_every_field(portal: httpx.AsyncClient) -> None:
    page = await portal.get("/portal/sign-in")
    assert page.status_code == 200
    for field in ("email", "password"):
        assert f'<label for="{field}">' in page.text and f'id="{field}"' in page.text


async def test_a_wrong_password_or_unknown_email_signs_nobody_in_and_says_the_same(
    portal: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    email = await with_password(sessions, creditor)

    wrong = await sign_in(portal, email, "not the password at all")
    unknown = await sign_in(portal, "nobody@example.com")

    for answer in (wrong, unknown):
        assert answer.status_code == 401
        assert "do not match an account" in answer.text
        assert not [h for h in answer.headers.get_list("set-cookie") if SESSION_COOKIE in h]
    assert (await portal.get("/portal/tasks")).status_code == 303


async def test_a_form_without_its_csrf_token_is_refused_and_signs_nobody_in(
    portal: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    email = await with_password(sessions, creditor)
    await portal.get("/portal/sign-in")  # the visitor has a CSRF cookie

    missing = await portal.post("/portal/sign-in", data={"email": email, "password": PASSWORD})
    forged = await portal.post(
        "/portal/sign-in", data={"email": email, "password": PASSWORD, "csrf_token": "0" * 64}
    )

    for answer in (missing, forged):
        assert answer.status_code == 403
        assert "expired or was not sent from the portal" in answer.text
        assert "text/html" in answer.headers["content-type"]
        assert not [h for h in answer.headers.get_list("set-cookie") if SESSION_COOKIE in h]


async def test_a_token_from_another_visitors_cookie_is_refused(
    portal: httpx.AsyncClient,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
) -> None:
    """The token is bound to the visitor's own CSRF cookie (an attacker's page cannot read it)."""
    email = await with_password(sessions, creditor)
    signer = Signer.from_settings(settings)
    assert signer is not None
    await portal.get("/portal/sign-in")
    portal.cookies.set(CSRF_COOKIE, "victims-cookie", domain="caseloop.test", path="/portal")
    answer = await portal.post(
        "/portal/sign-in",
        data={"email": email, "password": PASSWORD, "csrf_token": signer.csrf_token("attacker")},
    )
    assert answer.status_code == 403


async def test_signing_in_replaces_the_csrf_cookie(
    portal: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    email = await with_password(sessions, creditor)
    before = csrf_of(await portal.get("/portal/sign-in"))
    await sign_in(portal, email)
    after = csrf_of(await portal.get("/portal/tasks"))
    assert before != after


async def test_sign_out_ends_the_session(
    portal: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    email = await with_password(sessions, creditor)
    await sign_in(portal, email)

    out = await post_form(portal, "/portal/sign-out", {}, page="/portal/tasks")

    assert out.status_code == 303 and out.headers["location"] == "/portal/sign-in"
    assert (await portal.get("/portal/tasks")).status_code == 303


async def test_sign_out_without_the_csrf_token_is_refused(
    portal: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    email = await with_password(sessions, creditor)
    await sign_in(portal, email)
    assert (await portal.post("/portal/sign-out")).status_code == 403
    assert (await portal.get("/portal/tasks")).status_code == 200


async def test_a_password_change_ends_every_session_begun_before_it(
    portal: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    email = await with_password(sessions, creditor)
    await sign_in(portal, email)
    await with_password(sessions, creditor, "another long passphrase")
    assert (await portal.get("/portal/tasks")).status_code == 303


async def test_a_deactivated_user_is_signed_out(
    portal: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    email = await with_password(sessions, creditor)
    await sign_in(portal, email)
    async with transaction(sessions) as session:
        user = await session.get(User, creditor.principal.user_id)
        assert user is not None
        user.active = False
    assert (await portal.get("/portal/tasks")).status_code == 303
    assert (await sign_in(portal, email)).status_code == 401


async def test_a_forged_or_expired_session_cookie_is_not_a_session(
    portal: httpx.AsyncClient,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
) -> None:
    await with_password(sessions, creditor)
    other = Signer.from_settings(settings)
    assert other is not None
    forged = Signer(b"x" * 40, other.session_seconds, other.link_seconds, other.secure)
    portal.cookies.set(
        SESSION_COOKIE,
        forged.session_value(creditor.principal.user_id, 0),
        domain="caseloop.test",
        path="/portal",
    )
    assert (await portal.get("/portal/tasks")).status_code == 303
    expired = Signer(other.secret, -1, other.link_seconds, other.secure)
    portal.cookies.set(
        SESSION_COOKIE,
        expired.session_value(creditor.principal.user_id, 0),
        domain="caseloop.test",
        path="/portal",
    )
    assert (await portal.get("/portal/tasks")).status_code == 303


async def test_after_five_failures_the_account_is_locked_even_for_the_right_password(
    portal: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    email = await with_password(sessions, creditor)
    colleague = await make_actor(sessions, OrgKind.CREDITOR, org_id=creditor.org_id)
    colleague_email = await with_password(sessions, colleague)

    for _ in range(5):
        assert (await sign_in(portal, email, "wrong password here")).status_code == 401
    locked = await sign_in(portal, email)

    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.text
    # Another account from the same address still signs in (the address limit is higher).
    assert (await sign_in(portal, colleague_email)).status_code == 303


async def test_many_failures_from_one_address_lock_that_address(
    portal: httpx.AsyncClient,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
) -> None:
    email = await with_password(sessions, creditor)
    for n in range(settings.portal_max_failures_per_address):
        assert (
            await sign_in(portal, f"spray{n}@example.com", "guess guess guess")
        ).status_code == 401
    assert (await sign_in(portal, email)).status_code == 429
    async with sessions() as session:
        keys = set((await session.scalars(select(SignInFailures.key))).all())
    assert "addr:203.0.113.7" in keys


async def test_a_success_clears_the_accounts_failures(
    portal: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    email = await with_password(sessions, creditor)
    for _ in range(4):
        await sign_in(portal, email, "wrong password here")
    assert (await sign_in(portal, email)).status_code == 303
    for _ in range(4):
        await sign_in(portal, email, "wrong password here")
    assert (await sign_in(portal, email)).status_code == 303


async def test_failures_older_than_the_window_start_counting_again(
    sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    from store.passwords import SignInLimits
    from store.passwords import sign_in as check

    email = await with_password(sessions, creditor)
    limits = SignInLimits(3, 100, dt.timedelta(minutes=15), dt.timedelta(minutes=15))
    start = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
    for minute in (0, 1):
        async with sessions() as session:
            await check(
                session=session,
                email=email,
                password="nope nope nope",
                address="a",
                limits=limits,
                now=start + dt.timedelta(minutes=minute),
            )
    later = start + dt.timedelta(minutes=20)
    async with sessions() as session:
        await check(
            session=session,
            email=email,
            password="nope nope nope",
            address="a",
            limits=limits,
            now=later,
        )
        assert (
            await session.scalar(
                select(SignInFailures.failures).where(SignInFailures.key == f"user:{email}")
            )
            == 1
        )


async def test_the_next_parameter_never_leaves_the_portal(
    portal: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    email = await with_password(sessions, creditor)
    for target in (
        "https://evil.example/",
        "//evil.example/portal/",
        "/api/cases",
        "/portal\\@evil",
    ):
        answer = await sign_in(portal, email, next_path=target)
        assert answer.headers["location"] == "/portal/tasks", target


async def test_a_set_password_link_works_once(
    portal: httpx.AsyncClient,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
) -> None:
    signer = Signer.from_settings(settings)
    assert signer is not None
    link = "/portal/password/" + signer.password_token(creditor.principal.user_id, 0)
    async with sessions() as session:
        user = await session.get(User, creditor.principal.user_id)
        assert user is not None
        email = user.email

    page = await portal.get(link)
    assert page.status_code == 200 and email in page.text
    short = await post_form(portal, link, {"password": "short", "confirm": "short"})
    assert short.status_code == 422 and "at least 10 characters" in short.text
    differ = await post_form(portal, link, {"password": PASSWORD, "confirm": PASSWORD + "!"})
    assert differ.status_code == 422 and "differ" in differ.text
    done = await post_form(portal, link, {"password": PASSWORD, "confirm": PASSWORD})
    assert done.status_code == 303

    assert (await portal.get(link)).status_code == 410
    assert (await sign_in(portal, email)).status_code == 303


async def test_a_tampered_set_password_link_is_gone(
    portal: httpx.AsyncClient, settings: Settings, creditor: Actor
) -> None:
    signer = Signer.from_settings(settings)
    assert signer is not None
    token = signer.password_token(creditor.principal.user_id, 0)
    assert (await portal.get("/portal/password/" + token[:-2] + "xx")).status_code == 410


async def test_api_keys_do_not_open_the_portal_and_sessions_do_not_open_the_api(
    portal: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    assert (await portal.get("/portal/tasks", headers=creditor.headers)).status_code == 303
    email = await with_password(sessions, creditor)
    await sign_in(portal, email)
    api = await portal.get("/api/tasks")
    assert api.status_code == 401
    assert api.headers["content-type"].startswith("application/problem+json")


async def test_without_a_secret_key_the_portal_says_it_is_not_configured(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> None:
    from api.app import create_app

    app = create_app(settings.model_copy(update={"portal_secret_key": None}))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://caseloop.test"
        ) as client,
    ):
        page = await client.get("/portal/sign-in")
    assert page.status_code == 503
    assert "PORTAL_SECRET_KEY" in page.text


async def test_an_unknown_portal_page_is_an_html_404(portal: httpx.AsyncClient) -> None:
    page = await portal.get("/portal/no-such-page")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")


async def test_set_password_stores_an_argon2_hash(
    sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    async with transaction(sessions) as session:
        await set_password(session=session, user_id=creditor.principal.user_id, password=PASSWORD)
    async with sessions() as session:
        user = await session.get(User, creditor.principal.user_id)
        assert user is not None and user.password_hash is not None
        assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash


async def test_a_portal_form_larger_than_the_body_cap_is_refused_before_it_is_read(
    portal: httpx.AsyncClient, settings: Settings
) -> None:
    page = await portal.get("/portal/sign-in")
    big = "x" * (settings.max_body_bytes + 1)
    answer = await portal.post(
        "/portal/sign-in", data={"csrf_token": csrf_of(page), "email": big, "password": "p"}
    )
    assert answer.status_code == 413
