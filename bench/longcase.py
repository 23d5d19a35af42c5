"""(e) An action on a case with 500 prior messages against the same action on a fresh case: a chat
message and a status change through the API at concurrency 1, batches alternating between the
long case and a rotation of fresh cases (so the fresh ones stay fresh), as a latency ratio."""

from __future__ import annotations

import argparse
import itertools

from bench.flows import Api, Conversation, StatusCycle, case_in_collection, parties
from bench.harness import Report, phase, stack, summary, timed

NAME = "longcase"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prior-messages", type=int, default=500, help="messages on the long case")
    parser.add_argument("--long-rounds", type=int, default=10, help="interleaved rounds")
    parser.add_argument("--fresh-cases", type=int, default=5, help="fresh cases taking turns")


async def run(args: argparse.Namespace) -> Report:
    batch = 5
    report = Report(
        NAME,
        {
            "prior_messages": args.prior_messages,
            "rounds": args.long_rounds,
            "batch": batch,
            "fresh_cases": args.fresh_cases,
        },
        columns=("long case", "fresh case"),
    )
    async with stack(database=args.database) as s:
        api = Api(s.http)
        who = await parties(s)
        with phase(f"a case with {args.prior_messages} messages"):
            long_case = await case_in_collection(api, who)
            long_chat = Conversation(api, who, long_case)
            for _ in range(args.prior_messages):
                await long_chat.say()
            long_status = StatusCycle(api, who, long_case)
        with phase(f"{args.fresh_cases} fresh cases"):
            fresh = []
            for _ in range(args.fresh_cases):
                case_id = await case_in_collection(api, who)
                fresh.append((Conversation(api, who, case_id), StatusCycle(api, who, case_id)))
        rotation = itertools.cycle(fresh)
        samples: dict[str, list[float]] = {
            "long chat": [],
            "fresh chat": [],
            "long status": [],
            "fresh status": [],
        }
        await long_status.change()  # warm up the status path
        with phase(f"{args.long_rounds} interleaved rounds"):
            for _ in range(args.long_rounds):
                for _ in range(batch):
                    samples["long chat"].append(await timed(long_chat.say))
                for _ in range(batch):
                    samples["fresh chat"].append(await timed(next(rotation)[0].say))
                for _ in range(batch):
                    samples["long status"].append(await timed(long_status.change))
                for _ in range(batch):
                    samples["fresh status"].append(await timed(next(rotation)[1].change))
            s.check()
    ms = {kind: summary([v * 1000 for v in values]) for kind, values in samples.items()}
    report.data = {"latency_ms": ms}
    for action in ("chat", "status"):
        long_ms, fresh_ms = ms[f"long {action}"], ms[f"fresh {action}"]
        label = "chat message" if action == "chat" else "status change"
        report.figure(
            f"{label} p50, long case vs fresh",
            long_ms["p50"],
            fresh_ms["p50"],
            unit="ms",
            at_most=1.2,
            target="≤ 1.2x fresh",
        )
        report.figure(
            f"{label} p99, long case vs fresh",
            long_ms["p99"],
            fresh_ms["p99"],
            unit="ms",
            note="(no target)",
        )
    return report
