"""(f) The nightly chat-task cleanup over many overdue chat tasks (default 2,000; the target is
about 100,000): the ``chat-cleanup`` schedule the worker installs is triggered, and the time from
the trigger until the run (and any run it continued as) has finished is measured.

What is seeded, and why it is faithful (bench/README.md says more):

- ``--real`` tasks are real: cases created through the API, each with up to 50 invited partners
  (quote request), each of whom writes "Thanks, noted 👍" in its Invoice Questions Chat. That
  raises a real ReplyToChat task for the creditor in the case workflow, which the cleanup must
  dismiss through that workflow, exactly as in production. Only their ``overdue_since`` (and
  deadline) is moved into the past in the read model: their deadline is two business days away
  and a dev server cannot skip time.
- The others are written straight into the read model: an overdue ReplyToChat task (a copy of a
  real task row, all columns, for a relationship's General thread of its own) and its thread,
  whose last message is the partner's question. The classifier leaves such a task open, so the
  cleanup never contacts its owning workflow: for these, the read model is all the cleanup reads,
  and rows are as faithful as real workflows would be.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import math
import random
import uuid
from typing import Any

from sqlalchemy import func, insert, inspect, select, update

from bench.flows import Api, parties, validated_case
from bench.harness import Actor, Report, Stack, phase, stack, trigger_schedule
from domain.chat import ThreadType, chat_task_key
from domain.enums import OrgKind, Party
from schedules import CHAT_CLEANUP
from store.models import ChatMessageRow, TaskRow

NAME = "cleanup"
TARGET_TASKS = 100_000
TARGET_SECONDS = 300
PARTNERS_PER_CASE = 50  # the most one quote request invites
CHUNK = 5_000
ACKNOWLEDGEMENT = "Thanks, noted 👍"
QUESTIONS = (
    "Could you send us the signed contract with the debtor?",
    "Has the debtor paid anything since the due date?",
    "Do you have the debtor's current address?",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tasks", type=int, default=2_000, help="overdue chat tasks in all")
    parser.add_argument(
        "--real",
        type=int,
        default=200,
        help="of which real, dismissible ones owned by case workflows",
    )
    parser.add_argument(
        "--timeout", type=float, default=900, help="give up on the run after (seconds)"
    )


def _columns(row: Any) -> dict[str, Any]:
    return {attr.key: getattr(row, attr.key) for attr in inspect(type(row)).column_attrs}


async def seed_real(s: Stack, count: int) -> tuple[Actor, list[str]]:
    """``count`` real ReplyToChat tasks of one creditor; returns it and the task ids."""
    api = Api(s.http)
    who = await parties(s)
    partners = [await s.actor(OrgKind.PARTNER) for _ in range(min(count, PARTNERS_PER_CASE))]

    async def one_case(size: int) -> None:
        case_id = await validated_case(api, who)
        await api.request_quotes(who.ops, case_id, partners[:size])
        for partner in partners[:size]:
            await api.post_message(
                partner, case_id, ACKNOWLEDGEMENT, threadType=ThreadType.INVOICE_QUESTIONS_CHAT
            )

    sizes = [PARTNERS_PER_CASE] * (count // PARTNERS_PER_CASE)
    if count % PARTNERS_PER_CASE:
        sizes.append(count % PARTNERS_PER_CASE)
    for start in range(0, len(sizes), 8):  # eight cases at a time
        await asyncio.gather(*(one_case(size) for size in sizes[start : start + 8]))
    async with s.sessions() as session:
        ids = list(
            await session.scalars(
                select(TaskRow.id).where(
                    TaskRow.owner_org_id == who.creditor.org_id,
                    TaskRow.type == "ReplyToChat",
                    TaskRow.status == "Open",
                )
            )
        )
    if len(ids) != count:
        raise RuntimeError(f"expected {count} open ReplyToChat tasks, found {len(ids)}")
    return who.creditor, ids


async def seed_rows(s: Stack, real_ids: list[str], count: int, rng: random.Random) -> None:
    """Make the real tasks overdue and add ``count`` overdue tasks (with threads) as rows."""
    now = dt.datetime.now(dt.UTC)

    def overdue() -> dt.datetime:
        return now - dt.timedelta(days=1, seconds=rng.randrange(30 * 86_400))

    async with s.sessions() as session, session.begin():
        for task_id in real_ids:
            since = overdue()
            await session.execute(
                update(TaskRow)
                .where(TaskRow.id == task_id)
                .values(overdue_since=since, deadline=since)
            )
        template = await session.get(TaskRow, real_ids[0])
        assert template is not None
        message = await session.scalar(
            select(ChatMessageRow).where(ChatMessageRow.case_id == template.case_id).limit(1)
        )
        assert message is not None
        task_template, message_template = _columns(template), _columns(message)
    partner_id = message_template["partner_id"]
    for start in range(0, count, CHUNK):
        tasks, messages = [], []
        for _ in range(min(CHUNK, count - start)):
            relationship = uuid.uuid4()
            since = overdue()
            tasks.append(
                {
                    **task_template,
                    "id": str(uuid.uuid4()),
                    "key": chat_task_key(ThreadType.GENERAL, partner_id, Party.CREDITOR),
                    "case_id": None,
                    "relationship_id": relationship,
                    "workflow_id": f"relationship-{relationship}",
                    "deadline": since,
                    "original_deadline": since,
                    "overdue_since": since,
                    "date_created": since - dt.timedelta(days=2),
                }
            )
            thread = [
                ("Partner", rng.choice(QUESTIONS)),
                ("Creditor", "Let me check and come back to you."),
                ("Partner", rng.choice(QUESTIONS)),
            ]
            for seq, (role, body) in enumerate(thread, start=1):
                messages.append(
                    {
                        **message_template,
                        "id": str(uuid.uuid4()),
                        "seq": seq,
                        "case_id": None,
                        "relationship_id": relationship,
                        "thread_type": ThreadType.GENERAL.value,
                        "role": role,
                        "org_id": None,
                        "user_id": None,
                        "body": body,
                        "attachment_ids": [],
                        "created_at": since - dt.timedelta(days=2, minutes=10 * (3 - seq)),
                    }
                )
        async with s.sessions() as session, session.begin():
            await session.execute(insert(TaskRow), tasks)
            await session.execute(insert(ChatMessageRow), messages)


async def trigger_and_wait(s: Stack, give_up_after: float) -> tuple[float, Any, str]:
    """Trigger the nightly schedule now; the seconds until its run finished, its result and
    the workflow id."""
    return await trigger_schedule(s, CHAT_CLEANUP, give_up_after)


async def run(args: argparse.Namespace) -> Report:
    real = min(args.real, args.tasks)
    report = Report(NAME, {"tasks": args.tasks, "real": real, "timeout": args.timeout})
    rng = random.Random(10)
    async with stack(database=args.database) as s:
        with phase(f"{real} real chat tasks through the API"):
            creditor, real_ids = await seed_real(s, real)
        with phase(f"{args.tasks - real} chat tasks as read-model rows"):
            await seed_rows(s, real_ids, args.tasks - real, rng)
        with phase("the nightly cleanup"):
            error = None
            try:
                seconds, result, workflow_id = await trigger_and_wait(s, args.timeout)
            except (TimeoutError, Exception) as exc:  # a failed run is a figure too
                error = f"{type(exc).__name__}: {exc}"
                seconds, result, workflow_id = math.inf, None, ""
        async with s.sessions() as session:
            dismissed = await session.scalar(
                select(func.count()).where(TaskRow.id.in_(real_ids), TaskRow.status == "Solved")
            )
            # The seeded rows are the only chat tasks outside cases.
            questions_open = await session.scalar(
                select(func.count()).where(
                    TaskRow.case_id.is_(None),
                    TaskRow.type == "ReplyToChat",
                    TaskRow.status == "Open",
                )
            )
    looked_at = result.get("lookedAt") if isinstance(result, dict) else None
    report.data = {
        "seconds": seconds,
        "workflow_id": workflow_id,
        "result": result,
        "error": error,
        "real_dismissed": dismissed,
        "questions_left_open": questions_open,
        "creditor": str(creditor.org_id),
    }
    handled = looked_at if isinstance(looked_at, int) else None
    report.figure("overdue chat tasks seeded", args.tasks, note=f"({real} real)")
    report.figure(
        "tasks the run looked at",
        handled,
        unit="tasks",
        at_least=args.tasks,
        target=f"all {args.tasks}",
    )
    report.figure(
        "real acknowledgements dismissed",
        dismissed,
        unit="tasks",
        at_least=real,
        target=f"all {real}",
    )
    report.figure(
        "questions left open",
        questions_open,
        unit="tasks",
        at_least=args.tasks - real,
        target=f"all {args.tasks - real}",
    )
    report.figure("cleanup run", seconds, unit="s", note=error or "")
    # Judged on what the run really did: a run that looked at fewer tasks than seeded is
    # extrapolated from its time per task, never credited with the whole night.
    per_task = seconds / handled if handled else math.inf
    if handled is not None and handled >= TARGET_TASKS:
        report.figure(f"cleanup of {handled} tasks", seconds, unit="s", at_most=TARGET_SECONDS)
    else:
        report.figure(
            f"cleanup of {TARGET_TASKS} tasks (extrapolated)",
            per_task * TARGET_TASKS,
            unit="s",
            at_most=TARGET_SECONDS,
            note=f"({per_task * 1000:.1f} ms per task looked at)",
        )
    return report
