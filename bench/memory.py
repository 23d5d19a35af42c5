"""(d) Worker memory per cached open case: the RSS a fresh worker process grows by while N cases
are opened and stay in its workflow cache, divided by N; caseloop's worker (cases created through
the API) against a bare worker with the SDK's default sandbox (bare workflows opened by
update-with-start), each in its own process. Median over repeats, caseloop and bare alternating,
each repeat with fresh worker processes.

The cases are those of a creditor that has signed its contract, so each is Validated by the
update that creates it and tells its account nothing. Each repeat still opens its cases for a
new creditor and waits until every one of them is Validated before it measures: a case
submitted before its creditor signed signals the account, which signals it back
(``contract_signed``), and a creditor shared between repeats, or a backlog left behind by the
stopped worker, would otherwise be replayed into the next worker while it is measured (its
history and the previous repeat's cases: 277 cached workflows counted as 200)."""

from __future__ import annotations

import argparse
import asyncio
import statistics
from collections.abc import Awaitable, Callable

from bench import bare
from bench.flows import Api, Parties, parties
from bench.harness import Child, Report, phase, stack

NAME = "memory"
WARM_UP = 5  # cases opened before the baseline, so that every module is imported
SETTLE_SECONDS = 2.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cases",
        type=int,
        default=200,
        help="open cases per repeat (keep it below the worker's cache size)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="repeats")


async def gather_limited(jobs: list[Callable[[], Awaitable[object]]], concurrency: int = 8) -> None:
    queue = list(jobs)

    async def client() -> None:
        while queue:
            await queue.pop()()

    await asyncio.gather(*(client() for _ in range(concurrency)))


async def growth(
    worker: Child,
    open_one: Callable[[], Awaitable[object]],
    cases: int,
    settled: Callable[[], Awaitable[object]] | None = None,
) -> tuple[int, int]:
    """RSS of ``worker`` after the warm-up and after ``cases`` more are open (bytes);
    ``settled`` waits until what the opened cases set off has finished."""
    for _ in range(WARM_UP):
        await open_one()
    if settled is not None:
        await settled()
    await asyncio.sleep(SETTLE_SECONDS)
    before = worker.rss()
    await gather_limited([open_one] * cases)
    if settled is not None:
        await settled()
    await asyncio.sleep(SETTLE_SECONDS)
    worker.check()
    return before, worker.rss()


async def run(args: argparse.Namespace) -> Report:
    report = Report(NAME, {"cases": args.cases, "repeats": args.repeats})
    per_case: dict[str, list[float]] = {"caseloop": [], "bare": []}
    rss: list[dict[str, object]] = []
    async with stack(database=args.database) as s:
        api = Api(s.http)
        partner_and_ops = await parties(s)
        who: Parties = partner_and_ops
        opened: list[str] = []

        async def open_case() -> None:
            case = await api.create_case(who.creditor, bankAccountId=who.bank_account)
            opened.append(str(case["caseId"]))

        async def validated() -> None:
            for case_id in opened:
                await api.until_status(who.creditor, case_id, "Validated")

        async def open_bare() -> None:
            await bare.start(s.bare_client, s.bare_task_queue, {"status": "Created"})

        for repeat in range(args.repeats):
            sides: list[
                tuple[
                    str,
                    Callable[[], Child],
                    Callable[[], Awaitable[None]],
                    Callable[[], Awaitable[None]] | None,
                ]
            ] = [
                ("caseloop", s.restart_worker, open_case, validated),
                ("bare", s.restart_bare_worker, open_bare, None),
            ]
            if repeat % 2:
                sides.reverse()
            for side, fresh_worker, open_one, settled in sides:
                if side == "caseloop" and repeat:
                    # A new creditor: the last one's account workflow stays out of this worker.
                    who = await parties(s, partner=partner_and_ops.partner, ops=partner_and_ops.ops)
                    opened.clear()
                with phase(f"repeat {repeat + 1}: {args.cases} {side} cases"):
                    before, after = await growth(fresh_worker(), open_one, args.cases, settled)
                per_case[side].append((after - before) / args.cases / 1024)
                rss.append({"side": side, "before": before, "after": after})
        # A cache setting (if caseloop has one) below the number of cases would stop the growth.
        caches = {
            name: value
            for name, value in s.settings
            if "cache" in name and isinstance(value, int) and not isinstance(value, bool)
        }
    report.data = {"kib_per_case": per_case, "rss_bytes": rss, "cache_settings": caches}
    small = [f"{name}={value}" for name, value in caches.items() if value < args.cases + WARM_UP]
    report.figure(
        "worker RSS / cached open case",
        statistics.median(per_case["caseloop"]),
        statistics.median(per_case["bare"]),
        unit="KiB",
        at_most=1.5,
        note=f"(cases exceed {', '.join(small)}: figure too low)" if small else "",
    )
    return report
