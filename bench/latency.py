"""(a) Action latency at concurrency 1: a chat message and a status change through the API (real
HTTP), against a bare update round trip on the same dev server, interleaved batch by batch; plus
history events and workflow tasks per action and CPU time per action (dev server + worker + API
processes, vs dev server + bare worker + the calling process)."""

from __future__ import annotations

import argparse
import itertools

from bench import bare
from bench.flows import Api, Conversation, StatusCycle, case_in_collection, parties
from bench.harness import (
    CpuMeter,
    Report,
    history_per_action,
    phase,
    stack,
    stack_processes,
    summary,
    timed,
)
from domain.ids import case_workflow_id

NAME = "latency"
CASELOOP = ("server", "worker", "api", "database")
BARE = ("server", "bare_worker", "client")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int, default=20, help="interleaved rounds")
    parser.add_argument("--batch", type=int, default=10, help="actions per batch")


async def run(args: argparse.Namespace) -> Report:
    report = Report(NAME, {"rounds": args.rounds, "batch": args.batch})
    async with stack(database=args.database) as s:
        api = Api(s.http)
        with phase("setup"):
            who = await parties(s)
            chat_case = await case_in_collection(api, who)
            status_case = await case_in_collection(api, who)
            conversation = Conversation(api, who, chat_case)
            statuses = StatusCycle(api, who, status_case)
            handle = await bare.start(s.bare_client, s.bare_task_queue, {"status": "Created"})
            serial = itertools.count()

            async def bare_update() -> None:
                await bare.change(handle, {"message": f"Message {next(serial)}"})

            for _ in range(5):  # warm up every path
                await conversation.say()
                await statuses.change()
                await bare_update()

        meter = CpuMeter(stack_processes(s))
        samples: dict[str, list[float]] = {"chat": [], "status": [], "bare": []}
        plan = [
            ("chat", conversation.say, CASELOOP),
            ("bare", bare_update, BARE),
            ("status", statuses.change, CASELOOP),
            ("bare", bare_update, BARE),
        ]
        with phase(f"{args.rounds} interleaved rounds"):
            for _ in range(args.rounds):
                for kind, action, processes in plan:
                    meter.start()
                    for _ in range(args.batch):
                        samples[kind].append(await timed(action))
                    meter.stop(kind, count=processes)
            s.check()

        with phase("history per action"):
            chat_events, chat_tasks = await history_per_action(
                s.client, case_workflow_id(chat_case), conversation.say
            )
            status_events, status_tasks = await history_per_action(
                s.client, case_workflow_id(status_case), statuses.change
            )
            bare_events, bare_tasks = await history_per_action(
                s.bare_client, handle.id, bare_update
            )

    ms = {kind: summary([v * 1000 for v in values]) for kind, values in samples.items()}
    cpu = {kind: meter.totals[kind] * 1000 / len(samples[kind]) for kind in samples}
    cpu_by_process = {
        kind: {name: used * 1000 / len(samples[kind]) for name, used in parts.items()}
        for kind, parts in meter.by_process.items()
    }
    report.data = {
        "latency_ms": ms,
        "cpu_ms_per_action": cpu,
        "cpu_ms_per_action_by_process": cpu_by_process,
    }
    b = ms["bare"]
    report.figure("chat message p50", ms["chat"]["p50"], b["p50"], unit="ms", at_most=2.5)
    report.figure("chat message p99", ms["chat"]["p99"], b["p99"], unit="ms", at_most=3)
    report.figure("status change p50", ms["status"]["p50"], b["p50"], unit="ms", note="(no target)")
    report.figure("status change p99", ms["status"]["p99"], b["p99"], unit="ms", note="(no target)")
    report.figure("history events / chat message", chat_events, bare_events, at_most=2)
    report.figure("workflow tasks / chat message", chat_tasks, bare_tasks, at_most=1)
    report.figure("history events / status change", status_events, bare_events, note="(no target)")
    report.figure("workflow tasks / status change", status_tasks, bare_tasks, at_most=1)
    report.figure("CPU / chat message", cpu["chat"], cpu["bare"], unit="ms", note="(no target)")
    report.figure("CPU / status change", cpu["status"], cpu["bare"], unit="ms", note="(no target)")
    chat_cpu, bare_cpu = cpu_by_process["chat"], cpu_by_process["bare"]
    report.figure(
        "worker CPU / chat message",
        chat_cpu["worker"],
        bare_cpu["bare_worker"],
        unit="ms",
        note="(no target)",
    )
    report.figure(
        "server CPU / chat message",
        chat_cpu["server"],
        bare_cpu["server"],
        unit="ms",
        note="(no target)",
    )
    return report
