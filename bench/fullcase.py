"""(b) The full-case scenario through the API: create → contract signed → bank account → assign →
accept → 2 messages → status change, at concurrency 1 and 8, in cases per second; against a bare
workflow doing the same 8 round trips (update-with-start + 7 updates). Caseloop and bare batches
alternate, round by round."""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import time
from collections.abc import Awaitable, Callable

from bench import bare
from bench.flows import STATUS_CYCLE, Api, Parties
from bench.harness import Actor, Report, Stack, phase, stack
from domain.enums import OrgKind

NAME = "fullcase"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8], help="levels")
    parser.add_argument("--full-rounds", type=int, default=3, help="interleaved rounds per level")
    parser.add_argument(
        "--cases-per-client",
        type=int,
        default=3,
        help="cases each concurrent client runs per batch",
    )


async def new_creditor(s: Stack, partner: Actor, ops: Actor) -> Parties:
    """A creditor that has not signed its contract yet, with a bank account on file (set up
    outside the timed scenario: the scenario signs and assigns the account to the case)."""
    creditor = await s.actor(OrgKind.CREDITOR)
    account = await Api(s.http).new_bank_account(creditor)
    return Parties(creditor, partner, ops, account)


async def full_case(api: Api, who: Parties) -> None:
    """The scenario, as a creditor onboarding with its first case and a partner working it."""
    case_id = str((await api.create_case(who.creditor))["caseId"])
    await api.sign_contract(who.creditor)
    await api.set_bank_account(who.creditor, case_id, who.bank_account)
    # Assigning needs a Validated case; the API may finish validating after it answered.
    await api.until_status(who.creditor, case_id, "Validated")
    await api.assign(who.ops, case_id, who.partner)
    await api.accept(who.partner, case_id)
    await api.post_message(who.partner, case_id, "We have sent the first reminder.")
    await api.post_message(who.creditor, case_id, "Thanks, keep me posted.")
    await api.change_status(who.partner, case_id, **STATUS_CYCLE[0])


async def bare_case(s: Stack) -> None:
    """The same 8 round trips on a bare workflow."""
    handle = await bare.start(s.bare_client, s.bare_task_queue, {"status": "Created"})
    for change in (
        {"contract": "signed"},
        {"bankAccount": "DK5000400440116243"},
        {"partner": "assigned"},
        {"status": "In Collection"},
        {"message1": "We have sent the first reminder."},
        {"message2": "Thanks, keep me posted."},
        {"status": "In Collection", "subStatus": "First reminder sent"},
    ):
        await bare.change(handle, change)


async def batch(jobs: list[Callable[[], Awaitable[None]]], concurrency: int) -> float:
    """Run ``jobs`` with ``concurrency`` clients; returns cases per second."""
    queue = list(jobs)
    started = time.perf_counter()

    async def client() -> None:
        while queue:
            await queue.pop()()

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return len(jobs) / (time.perf_counter() - started)


async def run(args: argparse.Namespace) -> Report:
    report = Report(
        NAME,
        {
            "concurrency": args.concurrency,
            "rounds": args.full_rounds,
            "cases_per_client": args.cases_per_client,
        },
    )
    async with stack(database=args.database) as s:
        api = Api(s.http)
        partner = await s.actor(OrgKind.PARTNER)
        ops = await s.actor(OrgKind.OPS)
        with phase("warm-up"):
            await full_case(api, await new_creditor(s, partner, ops))
            await bare_case(s)
        rates: dict[int, dict[str, list[float]]] = {}
        for level in args.concurrency:
            size = level * args.cases_per_client
            rates[level] = {"caseloop": [], "bare": []}
            for _ in range(args.full_rounds):
                with phase(f"concurrency {level}: creditors for {size} cases"):
                    creditors = [await new_creditor(s, partner, ops) for _ in range(size)]
                with phase(f"concurrency {level}: {size} caseloop cases"):
                    rates[level]["caseloop"].append(
                        await batch(
                            [functools.partial(full_case, api, c) for c in creditors], level
                        )
                    )
                with phase(f"concurrency {level}: {size} bare cases"):
                    rates[level]["bare"].append(
                        await batch([lambda: bare_case(s) for _ in range(size)], level)
                    )
                s.check()
    report.data = {"cases_per_second": rates}
    for level, measured in rates.items():
        caseloop = statistics.median(measured["caseloop"])
        bare_rate = statistics.median(measured["bare"])
        report.figure(
            f"full cases/s, concurrency {level}",
            caseloop,
            bare_rate,
            unit="cases/s",
            at_least=0.4,
            target="≥ 0.4x (aim 0.6x)",
        )
    return report
