"""A chat message's projection, the code of several trees side by side: CPU and wall time per
``ProjectionActivities.project_case`` of the projection ``tests.store.test_projection_statements.
chat_message`` builds (the case's version, the message, two tasks and their visibility, two
events, and whatever the tree's fan-out does), on a fresh SQLite file per run, no subscription.

Each round runs every tree once, in a child process of its own (``PYTHONPATH`` = the tree), in
an order that alternates round by round; a child warms up, then times ``--per-round``
projections. Reported per tree: the median over rounds of each round's median CPU and wall
time, and the ratio to the first tree. Compare only within one run (the machine is shared).

Run: ``PYTHONPATH=$PWD .venv/bin/python -m bench.projection_ab --tree old=/work/base-s4
--tree new=$PWD [--rounds 8] [--per-round 300]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = """
import asyncio, json, statistics, sys, tempfile, time
from pathlib import Path

from domain.enums import OrgKind
from store.db import create_engine, session_factory
from store.migrate import upgrade
from tests.store.test_projection_statements import chat_message
from tests.support import make_actor


async def main(per_round: int) -> None:
    with tempfile.TemporaryDirectory(prefix="caseloop-projection-ab-") as folder:
        url = f"sqlite:///{Path(folder) / 'caseloop.db'}"
        upgrade(url)
        engine = create_engine(url)
        sessions = session_factory(engine)
        creditor = await make_actor(sessions, OrgKind.CREDITOR)
        partner = await make_actor(sessions, OrgKind.PARTNER)
        run, _ = await chat_message(sessions, creditor, partner)
        for _ in range(50):
            await run()
        cpu, wall = [], []
        for _ in range(per_round):
            started, used = time.perf_counter(), time.process_time()
            await run()
            wall.append(time.perf_counter() - started)
            cpu.append(time.process_time() - used)
        await engine.dispose()
    print(json.dumps({"cpu": statistics.median(cpu), "wall": statistics.median(wall)}))


asyncio.run(main(int(sys.argv[1])))
"""


def run_child(tree: Path, per_round: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(per_round)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    figures: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", required=True, help="label=path, repeatable")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--per-round", type=int, default=300)
    args = parser.parse_args()
    trees = [(label, Path(path)) for label, path in (t.split("=", 1) for t in args.tree)]
    got: dict[str, list[dict[str, float]]] = {label: [] for label, _ in trees}
    for round_ in range(args.rounds):
        order = trees if round_ % 2 == 0 else list(reversed(trees))
        for label, path in order:
            got[label].append(run_child(path, args.per_round))
        print(
            f"round {round_ + 1}: "
            + ", ".join(f"{label} {got[label][-1]['cpu'] * 1000:.3f} ms" for label, _ in trees),
            flush=True,
        )
    first = trees[0][0]
    base = statistics.median(r["cpu"] for r in got[first])
    for label, _ in trees:
        cpu = statistics.median(r["cpu"] for r in got[label])
        wall = statistics.median(r["wall"] for r in got[label])
        print(
            f"{label:12} cpu median {cpu * 1000:.3f} ms  wall median {wall * 1000:.3f} ms  "
            f"cpu / {first} {cpu / base:.3f}"
        )


if __name__ == "__main__":
    main()
