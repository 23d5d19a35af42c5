"""What each piece of caseloop's write path costs on a bare workflow (issue 10, targets (a), (b)).

A bare update round trip, and the same update with one of the things every caseloop action adds
(docs/decisions/0009): a search-attribute upsert, a memo upsert, a local activity the update
waits for (it does nothing, so only the SDK's and the server's handling of it are measured), and
a local activity together with an upsert (what a chat message does). One dev server
(``bench.harness.DevServer``) and one worker in this process run every variant; the variants
take turns, ``--per-round`` updates each, round after round, each on a workflow of its own.

Reported per variant, medians over rounds: the update's wall time (p50 of each round), the dev
server's CPU per update, and this process's (worker and client) CPU per update, each also as a
ratio to the bare update. It is the floor under caseloop's design: what remains between this
table and ``bench latency`` is caseloop's own code (the API, the workflow code, the projection's
writes). Compare only within one run.

Run: ``PYTHONPATH=$PWD .venv/bin/python -m bench.write_path_floor [--rounds 20] [--per-round 40]``
(a table as every benchmark prints, and JSON in bench/results/ with the machine and commit).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from temporalio import activity, workflow
from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributeKey
from temporalio.worker import Worker

from bench.harness import DevServer, Report, cpu_seconds, this_process_cpu

NAME = "write_path_floor"
TASK_QUEUE = "write-path-floor"
STATUS = SearchAttributeKey.for_keyword("CaseStatus")  # registered by the harness's dev server


@dataclass(frozen=True)
class Variant:
    name: str
    upsert: bool = False
    memo: bool = False
    local_activity: bool = False


VARIANTS = (
    Variant("bare update"),
    Variant("+ search-attribute upsert", upsert=True),
    Variant("+ memo upsert", memo=True),
    Variant("+ local activity", local_activity=True),
    Variant("+ local activity + upsert", upsert=True, local_activity=True),
)


@activity.defn
async def nothing(n: int) -> int:
    return n


@workflow.defn(name="WritePathFloor", sandboxed=False)
class WritePathFloor:
    def __init__(self) -> None:
        self.changes = 0

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.update
    async def change(self, variant: str) -> int:
        self.changes += 1
        chosen = next(v for v in VARIANTS if v.name == variant)
        if chosen.upsert:
            workflow.upsert_search_attributes([STATUS.value_set(f"s{self.changes}")])
        if chosen.memo:
            workflow.upsert_memo({"changes": self.changes})
        if chosen.local_activity:
            await workflow.execute_local_activity(
                nothing, self.changes, start_to_close_timeout=timedelta(seconds=5)
            )
        return self.changes


async def measure(rounds: int, per_round: int) -> dict[str, dict[str, float]]:
    samples: dict[str, dict[str, list[float]]] = {
        v.name: {"p50_ms": [], "server_cpu_ms": [], "worker_client_cpu_ms": []} for v in VARIANTS
    }
    with tempfile.TemporaryDirectory(prefix="caseloop-floor-") as folder:
        server = DevServer(Path(folder))
        try:
            await server.wait_ready()
            client = await Client.connect(server.address)
            async with Worker(
                client, task_queue=TASK_QUEUE, workflows=[WritePathFloor], activities=[nothing]
            ):
                handles: dict[str, WorkflowHandle] = {}
                for v in VARIANTS:
                    handles[v.name] = await client.start_workflow(
                        WritePathFloor.run, id=f"floor-{uuid.uuid4()}", task_queue=TASK_QUEUE
                    )
                    for _ in range(10):  # warm up
                        await handles[v.name].execute_update(WritePathFloor.change, v.name)
                for round_ in range(rounds):
                    order = VARIANTS if round_ % 2 == 0 else tuple(reversed(VARIANTS))
                    for v in order:
                        server_before, mine_before = (
                            cpu_seconds(server.child.pid),
                            this_process_cpu(),
                        )
                        walls = []
                        for _ in range(per_round):
                            started = time.perf_counter()
                            await handles[v.name].execute_update(WritePathFloor.change, v.name)
                            walls.append(time.perf_counter() - started)
                        got = samples[v.name]
                        got["p50_ms"].append(statistics.median(walls) * 1000)
                        got["server_cpu_ms"].append(
                            (cpu_seconds(server.child.pid) - server_before) / per_round * 1000
                        )
                        got["worker_client_cpu_ms"].append(
                            (this_process_cpu() - mine_before) / per_round * 1000
                        )
        finally:
            server.child.stop()
    return {
        name: {figure: statistics.median(values) for figure, values in figures.items()}
        for name, figures in samples.items()
    }


def report(result: dict[str, dict[str, float]], options: dict[str, object]) -> Report:
    """Each variant against the bare update: p50, the dev server's CPU and this process's."""
    built = Report(NAME, options, columns=("variant", "bare update"))
    base = result[VARIANTS[0].name]
    for name, figures in result.items():
        for figure, what in (
            ("p50_ms", "p50"),
            ("server_cpu_ms", "dev server CPU / update"),
            ("worker_client_cpu_ms", "worker + client CPU / update"),
        ):
            built.figure(f"{name}: {what}", figures[figure], base[figure], unit="ms")
    built.data = {"figures": result}
    return built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--per-round", type=int, default=40)
    args = parser.parse_args()
    built = report(asyncio.run(measure(args.rounds, args.per_round)), vars(args))
    built.print()
    print(f"written {built.write()}")


if __name__ == "__main__":
    main()
