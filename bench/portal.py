"""Portal pages with the demo's data plus 1,000 cases (issue 11): each main page's server time,
p50 and p95 over interleaved rounds (every page once per round, in turn), against the
target of p95 <= 100 ms, beside the same list read through the JSON API as a yardstick.

A few cases are made through the API (real workflows: tasks, a timeline with messages and
status changes); the 1,000 more are written into the read model directly, half of them worked
by the partner, each with two open tasks, so the lists page through real volumes. The
creditor and the partner sign in with passwords, as users do."""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import random
import re
import uuid
from decimal import Decimal

import httpx

from activities.projection import write_tasks
from bench.flows import Api, Conversation, case_in_collection, parties
from bench.harness import Actor, Report, Stack, percentile, phase, stack, timed
from domain.tasks import AccessLevel, Scope, Task, TaskType
from store.db import transaction
from store.models import Case, User
from store.passwords import set_password

NAME = "portal"
PASSWORD = "bench portal passphrase"
TARGET_MS = 100.0
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--portal-cases", type=int, default=1000, help="cases seeded directly")
    parser.add_argument("--portal-rounds", type=int, default=40, help="requests per page")


async def _seed(s: Stack, creditor: Actor, partner: Actor, cases: int) -> None:
    """``cases`` cases of the creditor in the read model, every other one worked by the
    partner, each with an open creditor task and an open partner (or second creditor) task."""
    rng = random.Random(11)
    now = dt.datetime.now(dt.UTC)
    rows, tasks = [], []
    for n in range(cases):
        case_id = uuid.uuid4()
        worked = n % 2 == 0
        created = now - dt.timedelta(hours=n)
        debtor = f"Debtor {rng.choice(['Hansen', 'Jensen', 'Nielsen', 'Larsen'])} {n} ApS"
        rows.append(
            Case(
                id=case_id,
                version=1,
                case_number=f"CL-BENCH-{n:06d}",
                creditor_id=creditor.org_id,
                partner_id=partner.org_id if worked else None,
                partner_name="Bench partner" if worked else None,
                submitted_by=creditor.user_id,
                creditor_reference=f"INV-{n}",
                currency_code="DKK",
                amount_to_recover=Decimal(rng.randint(100, 90_000)),
                date=created.date(),
                due_date=created.date(),
                claim_description="Seeded for the portal benchmark",
                debtor_name=debtor,
                debtor={"type": "Company", "name": debtor, "country_alpha2": "DK"},
                status="In Collection" if worked else "Created",
                sub_status=None,
                last_status_change=created,
                created_at=created,
                updated_at=created,
            )
        )
        for owner, access in ((creditor, AccessLevel.CREDITOR), (partner, AccessLevel.PARTNER)):
            if access is AccessLevel.PARTNER and not worked:
                owner, access = creditor, AccessLevel.CREDITOR
            deadline = now + dt.timedelta(days=rng.randint(-10, 30))
            tasks.append(
                Task(
                    id=str(uuid.uuid4()),
                    type=TaskType.GENERIC,
                    title=f"Follow up {n}",
                    description="",
                    access_level=access,
                    scope=Scope.CASE,
                    owner_org_id=owner.org_id,
                    owner_country="DK",
                    owner_timezone="Europe/Copenhagen",
                    case_id=case_id,
                    deadline=deadline,
                    original_deadline=deadline,
                    overdue_since=deadline if deadline < now else None,
                    date_created=created,
                    key=str(uuid.uuid4()),
                    workflow_id=f"bench-portal-{n}",
                    version=1,
                )
            )
    async with transaction(s.sessions) as session:
        session.add_all(rows)
    for start in range(0, len(tasks), 500):
        async with transaction(s.sessions) as session:
            await write_tasks(session, tasks[start : start + 500])


async def _signed_in(http: httpx.AsyncClient, s: Stack, actor: Actor) -> dict[str, str]:
    """The Cookie header of a portal session for ``actor`` (signed in with its password)."""
    async with transaction(s.sessions) as session:
        await set_password(session=session, user_id=actor.user_id, password=PASSWORD)
        user = await session.get(User, actor.user_id)
        assert user is not None
        email = user.email
    form = await http.get("/portal/sign-in")
    cookies = {c.name: c.value for c in http.cookies.jar}
    token = CSRF.search(form.text)
    assert token, form.text[:300]
    answer = await http.post(
        "/portal/sign-in",
        data={"email": email, "password": PASSWORD, "csrf_token": token.group(1)},
        headers={"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())},
    )
    assert answer.status_code == 303, answer.text[:300]
    session_cookie = answer.cookies.get("caseloop_session")
    assert session_cookie
    http.cookies.clear()
    return {"Cookie": f"caseloop_session={session_cookie}"}


async def run(args: argparse.Namespace) -> Report:
    report = Report(
        NAME,
        {"cases": args.portal_cases, "rounds": args.portal_rounds},
        columns=("portal", "JSON API"),
    )
    async with stack(database=args.database) as s:
        api = Api(s.http)
        who = await parties(s)
        with phase("demo cases through the API"):
            worked = await case_in_collection(api, who)
            talk = Conversation(api, who, worked)
            for _ in range(6):
                await talk.say()
            await case_in_collection(api, who)
        with phase(f"{args.portal_cases} cases written into the read model"):
            await _seed(s, who.creditor, who.partner, args.portal_cases)
        # A client of its own: the portal's cookies are Secure (PORTAL_BASE_URL is https), so
        # the session is sent by hand over the benchmark's plain HTTP.
        async with httpx.AsyncClient(base_url=str(s.http.base_url), timeout=60) as http:
            creditor = await _signed_in(http, s, who.creditor)
            partner = await _signed_in(http, s, who.partner)
            tasks = (await s.http.get("/api/tasks", headers=who.creditor.headers)).json()
            task_id = tasks["tasks"][0]["id"]
            pages = [
                ("Tasks menu (creditor)", "/portal/tasks", creditor, "/api/tasks", who.creditor),
                ("Tasks menu, completed", "/portal/tasks?status=Solved", creditor, None, None),
                ("Tasks menu (partner)", "/portal/tasks", partner, "/api/tasks", who.partner),
                ("Cases list (creditor)", "/portal/cases", creditor, "/api/cases", who.creditor),
                (
                    "Cases list, debtor search",
                    "/portal/cases?debtor=hansen",
                    creditor,
                    "/api/cases?debtorName=hansen",
                    who.creditor,
                ),
                ("Cases received (partner)", "/portal/cases", partner, "/api/cases", who.partner),
                (
                    "Case page (creditor)",
                    f"/portal/cases/{worked}",
                    creditor,
                    f"/api/cases/{worked}",
                    who.creditor,
                ),
                (
                    "Case page (partner)",
                    f"/portal/cases/{worked}",
                    partner,
                    f"/api/cases/{worked}",
                    who.partner,
                ),
                (
                    "Task page",
                    f"/portal/tasks/{task_id}",
                    creditor,
                    f"/api/tasks/{task_id}",
                    who.creditor,
                ),
                ("Account page", "/portal/account", creditor, "/api/account", who.creditor),
                (
                    "Chat page (creditor)",
                    f"/portal/cases/{worked}/chat",
                    creditor,
                    f"/api/cases/{worked}/chats",
                    who.creditor,
                ),
            ]
            samples: dict[str, tuple[list[float], list[float]]] = {p[0]: ([], []) for p in pages}

            async def get(path: str, headers: dict[str, str]) -> None:
                answer = await http.get(path, headers=headers)
                assert answer.status_code == 200, (path, answer.status_code, answer.text[:200])

            with phase(f"{args.portal_rounds} interleaved rounds of {len(pages)} pages"):
                for round_ in range(args.portal_rounds + 2):
                    for name, path, cookie, json_path, actor in pages:
                        portal_ms = await timed(functools.partial(get, path, cookie))
                        json_ms = None
                        if json_path and actor:
                            json_ms = await timed(functools.partial(get, json_path, actor.headers))
                        if round_ >= 2:  # two warm-up rounds
                            samples[name][0].append(portal_ms)
                            if json_ms is not None:
                                samples[name][1].append(json_ms)
        for name, (portal_s, json_s) in samples.items():
            mine = [1000 * v for v in portal_s]
            theirs = [1000 * v for v in json_s]
            p95 = percentile(mine, 95)
            report.figure(
                f"{name} p95",
                p95,
                unit="ms",
                at_most=TARGET_MS,
                note=f"JSON API p95 {percentile(theirs, 95):.1f} ms" if theirs else "",
            )
            report.figure(
                f"  {name} p50",
                percentile(mine, 50),
                percentile(theirs, 50) if theirs else None,
                unit="ms",
                note="(breakdown)",
            )
        report.data["samples"] = {k: v[0] for k, v in samples.items()}
    return report
