"""Two checkouts' workers on one stack: CPU per full case, interleaved (issue 10, worker CPU).

Starts one stack (``bench.harness``: dev server, read model, this checkout's API, the bare
worker), then, round after round, swaps caseloop's worker between an older checkout (``--old``)
and this one, the order alternating, and runs ``--cases`` full cases (``bench.fullcase``'s
scenario) one at a time on each, after two warm-up cases. Reported per full case, the median over
rounds: the worker's, the dev server's and the API's CPU time and the wall time; and the bare
scenario's, run once per round, as the baseline. The same dev server and API serve both workers,
so the difference between them is the worker code's (and what it makes the server do).

Run: ``PYTHONPATH=$PWD .venv/bin/python -m bench.worker_ab --old /tmp/old [--rounds 8]
[--cases 8]``, with ``--old`` an export of the older commit (``git archive C | tar -x -C
/tmp/old``).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path

from bench.flows import Api
from bench.fullcase import bare_case, full_case, new_creditor
from bench.harness import ROOT, stack, start_worker
from domain.enums import OrgKind

PROCESSES = ("worker", "server", "api")


async def run(old: Path, rounds: int, cases: int) -> dict[str, dict[str, float]]:
    codes = {"old": old, "new": ROOT}
    samples: dict[str, dict[str, list[float]]] = {
        name: {p: [] for p in (*PROCESSES, "wall")} for name in (*codes, "bare")
    }
    async with stack() as s:
        api = Api(s.http)
        partner = await s.actor(OrgKind.PARTNER)
        ops = await s.actor(OrgKind.OPS)
        for round_ in range(rounds):
            order = list(codes.items()) if round_ % 2 == 0 else list(reversed(codes.items()))
            for name, path in order:
                s.worker.stop()
                s.env["PYTHONPATH"] = str(path)
                s.worker = start_worker(s.workdir, s.env, name=f"worker-{name}-{round_}")
                for _ in range(2):
                    await full_case(api, await new_creditor(s, partner, ops))
                creditors = [await new_creditor(s, partner, ops) for _ in range(cases)]
                await asyncio.sleep(0.5)  # let the warm-up's other workflows settle
                clocks = (s.worker.cpu, s.server.child.cpu, s.api.cpu)
                before = [clock() for clock in clocks]
                started = time.perf_counter()
                for creditor in creditors:
                    await full_case(api, creditor)
                wall = time.perf_counter() - started
                await asyncio.sleep(0.3)
                for process, clock, then in zip(PROCESSES, clocks, before, strict=True):
                    samples[name][process].append((clock() - then) / cases * 1000)
                samples[name]["wall"].append(wall / cases * 1000)
            before = [s.bare_worker.cpu(), s.server.child.cpu()]
            started = time.perf_counter()
            for _ in range(cases):
                await bare_case(s)
            wall = time.perf_counter() - started
            await asyncio.sleep(0.3)
            bare = samples["bare"]
            bare["worker"].append((s.bare_worker.cpu() - before[0]) / cases * 1000)
            bare["server"].append((s.server.child.cpu() - before[1]) / cases * 1000)
            bare["api"].append(0.0)
            bare["wall"].append(wall / cases * 1000)
            print(
                f"round {round_ + 1}: "
                + "  ".join(
                    f"{name} worker {v['worker'][-1]:.0f} server {v['server'][-1]:.0f} ms"
                    for name, v in samples.items()
                ),
                flush=True,
            )
    return {
        name: {key: statistics.median(values) for key, values in v.items()}
        | {
            "total": statistics.median(
                sum(parts) for parts in zip(*(v[p] for p in PROCESSES), strict=True)
            )
        }
        for name, v in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, required=True, help="an older checkout's directory")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--cases", type=int, default=8, help="full cases per worker and round")
    args = parser.parse_args()
    medians = asyncio.run(run(args.old, args.rounds, args.cases))
    print("median CPU and wall time per full case (ms):")
    for name, figures in medians.items():
        print(f"  {name:4s} " + "  ".join(f"{key} {value:6.1f}" for key, value in figures.items()))


if __name__ == "__main__":
    main()
