"""(h) The partner daily summary for many partner users (default and target 10,000): the
``daily-summary`` schedule the worker installs is triggered, and the time from the trigger until
its run (and any run it continued as) has finished is measured, with the e-mails the SMTP sink
received per second.

What is seeded, and why it is faithful: partner organisations (``--users-per-org`` users each)
in a handful of real time zones whose local morning hour has come (picked from the clock when
the bench starts, so every user is due), and for each organisation ``--tasks-per-org`` open
partner tasks created within the last 24 hours before that morning, written straight into the
read model (copies of the columns a projection writes). The job reads only the read model, so
the rows are all it sees; what it does with them is real: the worker's job pages the users,
renders each e-mail from the templates and sends it through ``send_email``'s path (a claim in
``sent_emails``, SMTP, the mark) to a real SMTP sink (``python -m mail.sink``, aiosmtpd, one file
per message), over TCP.

Baseline, in the same run, interleaved (half before the job, half after): the same number of
bare SMTP conversations per second from the bench process to the same sink at the same
concurrency (``aiosmtplib.send`` of a message of the same size, no database, no rendering): the
ratio says what the job costs over sending alone. Then the schedule is triggered a second time
in the same hour: it must send nothing (the marks), and its time is what an hourly run with
nobody due costs.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import math
import sys
import tempfile
import time
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiosmtplib
from sqlalchemy import func, insert, select

from bench.harness import (
    Report,
    Stack,
    free_port,
    phase,
    stack,
    start_child,
    summary,
    trigger_schedule,
)
from bench.harness import _python_env as python_env
from domain.digests import SUMMARY_WINDOW, summary_window
from domain.enums import OrgKind
from domain.tasks import AccessLevel, Scope, TaskType
from schedules import DAILY_SUMMARY
from store.models import DailySummaryMark, Organisation, TaskRow, User

NAME = "dailysummary"
TARGET_USERS = 10_000
TARGET_SECONDS = 300
MORNING_HOUR = 7
CHUNK = 2_000
# Candidates, east to west; the bench takes the first --zones whose morning has come and whose
# day does not end within the hour.
ZONES = (
    "Pacific/Auckland",
    "Asia/Tokyo",
    "Asia/Kolkata",
    "Europe/Helsinki",
    "Europe/Copenhagen",
    "Europe/London",
    "America/Sao_Paulo",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "Pacific/Honolulu",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--users", type=int, default=TARGET_USERS, help="partner users in all")
    parser.add_argument("--users-per-org", type=int, default=20)
    parser.add_argument("--tasks-per-org", type=int, default=3)
    parser.add_argument("--zones", type=int, default=4, help="time zones the users are in")
    parser.add_argument(
        "--send-concurrency", type=int, default=16, help="DIGEST_SEND_CONCURRENCY of the worker"
    )
    parser.add_argument(
        "--summary-timeout", type=float, default=900, help="give up on the run after (seconds)"
    )


def due_zones(now: dt.datetime, count: int) -> list[str]:
    zones = []
    for name in ZONES:
        local = now.astimezone(ZoneInfo(name))
        if MORNING_HOUR <= local.hour < 23:
            zones.append(name)
    if len(zones) < count:
        raise RuntimeError(f"only {len(zones)} candidate time zones are past their morning now")
    return zones[:count]


async def seed(s: Stack, args: argparse.Namespace, zones: list[str], now: dt.datetime) -> int:
    """The organisations, users and tasks; returns the number of tasks."""
    orgs = math.ceil(args.users / args.users_per_org)
    created = dt.datetime.now(dt.UTC)
    tasks = 0
    for start in range(0, orgs, CHUNK // args.users_per_org or 1):
        org_rows, user_rows, task_rows = [], [], []
        for n in range(start, min(orgs, start + (CHUNK // args.users_per_org or 1))):
            org_id = uuid.uuid4()
            zone = zones[n % len(zones)]
            org_rows.append(
                {
                    "id": org_id,
                    "kind": OrgKind.PARTNER.value,
                    "name": f"Bench partner {n}",
                    "country": "DK",
                    "timezone": zone,
                    "created_at": created,
                    "contract_signed_at": None,
                    "account_version": 0,
                }
            )
            for u in range(min(args.users_per_org, args.users - n * args.users_per_org)):
                user_rows.append(
                    {
                        "id": uuid.uuid4(),
                        "org_id": org_id,
                        "email": f"user{u}.org{n}@partner{n}.example",
                        "name": f"User {u} of {n}",
                        "active": True,
                        "created_at": created,
                        "password_hash": None,
                        "password_changed_at": None,
                        "timezone": None,
                    }
                )
            day = summary_window(zone, now, MORNING_HOUR)
            assert day is not None
            for t in range(args.tasks_per_org):
                case_id = uuid.uuid4()
                made = day.end - SUMMARY_WINDOW / 2 + dt.timedelta(minutes=t)
                deadline = made + dt.timedelta(days=7)
                task_rows.append(
                    {
                        "id": str(uuid.uuid4()),
                        "version": 1,
                        "workflow_id": f"case-{case_id}",
                        "key": f"survey:{t}",
                        "type": TaskType.UPDATE_CASE_STATUS.value,
                        "title": "Update Case Status",
                        "description": "Tell the creditor how the case is going.",
                        "status": "Open",
                        "access_level": AccessLevel.PARTNER.value,
                        "scope": Scope.CASE.value,
                        "owner_org_id": org_id,
                        "case_id": case_id,
                        "relationship_id": None,
                        "deadline": deadline,
                        "sort_deadline": deadline,
                        "original_deadline": deadline,
                        "date_created": made,
                        "date_solved": None,
                        "overdue_since": None,
                        "assignee_id": None,
                        "resolved_by": None,
                        "case_reference": f"INV-{n}-{t}",
                        "case_visible": True,
                    }
                )
        async with s.sessions() as session, session.begin():
            await session.execute(insert(Organisation), org_rows)
            await session.execute(insert(User), user_rows)
            await session.execute(insert(TaskRow), task_rows)
        tasks += len(task_rows)
    return tasks


async def trigger_and_wait(s: Stack, give_up_after: float) -> tuple[float, Any]:
    """Trigger the daily-summary schedule now; the seconds until its run finished, and its
    result."""
    seconds, result, _ = await trigger_schedule(s, DAILY_SUMMARY, give_up_after)
    return seconds, result


def received(directory: Path) -> int:
    return sum(1 for _ in directory.glob("*.eml"))


async def bare_sends(port: int, count: int, concurrency: int, size: int) -> float:
    """``count`` bare SMTP conversations to the sink, ``concurrency`` at a time: e-mails/s."""
    slots = asyncio.Semaphore(concurrency)

    async def one(n: int) -> None:
        message = EmailMessage()
        message["From"] = "caseloop <no-reply@caseloop.localhost>"
        message["To"] = f"baseline{n}@partner.example"
        message["Subject"] = "3 new tasks for Bench partner"
        message["Message-ID"] = f"<{uuid.uuid4().hex}@caseloop.localhost>"
        message.set_content("x" * size)
        async with slots:
            await aiosmtplib.send(message, hostname="127.0.0.1", port=port, timeout=30)

    started = time.monotonic()
    await asyncio.gather(*(one(n) for n in range(count)))
    return count / (time.monotonic() - started)


async def run(args: argparse.Namespace) -> Report:
    report = Report(
        NAME,
        {
            "users": args.users,
            "users_per_org": args.users_per_org,
            "tasks_per_org": args.tasks_per_org,
            "zones": args.zones,
            "send_concurrency": args.send_concurrency,
        },
    )
    now = dt.datetime.now(dt.UTC)
    zones = due_zones(now, args.zones)
    mail_dir = Path(tempfile.mkdtemp(prefix="caseloop-bench-mail-"))
    baseline_dir = mail_dir / "baseline"
    port, baseline_port = free_port(), free_port()
    sinks = [
        start_child(
            name,
            [
                sys.executable,
                "-m",
                "mail.sink",
                "--dir",
                str(directory),
                "--port",
                str(listen),
            ],
            env=python_env({}),
            cwd=mail_dir,
        )
        for name, directory, listen in (
            ("sink", mail_dir / "job", port),
            ("baseline-sink", baseline_dir, baseline_port),
        )
    ]
    try:
        await asyncio.sleep(1)
        for sink in sinks:
            sink.check()
        env = {
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(port),
            "SMTP_SECURITY": "none",
            "DAILY_SUMMARY_HOUR": str(MORNING_HOUR),
            "DIGEST_SEND_CONCURRENCY": str(args.send_concurrency),
        }
        async with stack(database=args.database, extra_env=env) as s:
            with phase(f"{args.users} partner users in {zones}"):
                tasks = await seed(s, args, zones, now)
            half = max(1, min(2_000, args.users) // 2)
            with phase(f"baseline: {half} bare SMTP sends"):
                rates = [await bare_sends(baseline_port, half, args.send_concurrency, 2_500)]
            with phase("the daily summary"):
                error = None
                try:
                    seconds, result = await trigger_and_wait(s, args.summary_timeout)
                except Exception as exc:  # a failed run is a figure too
                    error = f"{type(exc).__name__}: {exc}"
                    seconds, result = math.inf, None
            sent = received(mail_dir / "job")
            with phase(f"baseline: {half} bare SMTP sends again"):
                rates.append(await bare_sends(baseline_port, half, args.send_concurrency, 2_500))
            with phase("the same hour again"):
                again_seconds, again = await trigger_and_wait(s, args.summary_timeout)
            sent_again = received(mail_dir / "job") - sent
            async with s.sessions() as session:
                marked = await session.scalar(select(func.count()).select_from(DailySummaryMark))
    finally:
        for sink in sinks:
            sink.stop()
    rate = sent / seconds if seconds and math.isfinite(seconds) else 0.0
    bare = summary(rates)["p50"] if rates else None
    report.data = {
        "seconds": seconds,
        "result": result,
        "error": error,
        "received": sent,
        "tasks": tasks,
        "zones": zones,
        "marked": marked,
        "baseline_rates": rates,
        "again_seconds": again_seconds,
        "again": again,
        "received_again": sent_again,
    }
    report.figure("partner users seeded", args.users, note=f"in {len(zones)} time zones")
    report.figure("summaries received by the SMTP sink", sent, unit="e-mails", at_least=args.users)
    report.figure(
        "e-mails/s (job vs bare SMTP sends)",
        rate,
        bare,
        unit="/s",
        note=f"bare: median of {len(rates)} interleaved",
    )
    report.figure("daily summary run", seconds, unit="s", note=error or "")
    per_user = seconds / sent if sent else math.inf
    if sent >= TARGET_USERS:
        report.figure(f"daily summary of {sent} users", seconds, unit="s", at_most=TARGET_SECONDS)
    else:
        report.figure(
            f"daily summary of {TARGET_USERS} users (extrapolated)",
            per_user * TARGET_USERS,
            unit="s",
            at_most=TARGET_SECONDS,
            note=f"({per_user * 1000:.1f} ms per user)",
        )
    report.figure("a second run the same hour: e-mails", sent_again, unit="e-mails", at_most=0)
    report.figure("a second run the same hour", again_seconds, unit="s")
    return report
