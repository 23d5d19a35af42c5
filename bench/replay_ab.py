"""Two checkouts' workflow activations, interleaved: CPU per replay of the recorded histories.

Replays every recorded history (``tests/replay/histories``, but the plain-payload
``chat_cleanup.json``; each checkout its own, so compare checkouts whose histories are the
same) with the worker's own runner stack, interceptors and data converter, in
one process per checkout and sample, the checkouts alternating: ``--samples`` processes each,
``--passes`` replays of all histories per process after one warm-up pass. A replay is the
worker's activation path without the server: decode the activation (payload visitor, codec,
pydantic), run the workflow code under the runner, encode the completion. It measures what the
runner and the workflow code cost per activation, without what the dev server, the API and the
projections' database do, so a busy machine moves it less than ``bench.worker_ab``.

Run: ``PYTHONPATH=$PWD .venv/bin/python -m bench.replay_ab --old /tmp/old [--samples 3]
[--passes 4]``, with ``--old`` an export of the older commit (``git archive C | tar -x -C
/tmp/old``); ``--one`` is what each process runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


async def one(passes: int) -> list[float]:
    """CPU seconds of each of ``passes`` replays of every history, in this process."""
    from temporalio.client import WorkflowHistory
    from temporalio.worker import Replayer

    import worker
    from tests.support import TEST_DATA_CONVERTER

    histories = [
        WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())
        for path in sorted((Path.cwd() / "tests" / "replay" / "histories").glob("*.json"))
        if path.stem != "chat_cleanup"
    ]
    runner = worker.ContextFreeRunner(worker.ReleasingRunner(worker.WORKFLOW_RUNNER))
    replayer = Replayer(
        workflows=worker.WORKFLOWS,
        data_converter=TEST_DATA_CONVERTER,
        workflow_runner=runner,
        interceptors=[*worker.INTERCEPTORS, worker.ReleaseStartHeaders()],
    )

    async def each() -> AsyncIterator[WorkflowHistory]:
        for history in histories:
            yield history

    async def replay() -> float:
        started = time.process_time()
        async with replayer.workflow_replay_iterator(each()) as results:
            async for result in results:
                if result.replay_failure is not None:
                    raise result.replay_failure
        return time.process_time() - started

    await replay()  # warm-up
    return [await replay() for _ in range(passes)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, help="an older checkout's directory")
    parser.add_argument("--samples", type=int, default=3, help="processes per checkout")
    parser.add_argument("--passes", type=int, default=4, help="replays per process")
    parser.add_argument("--one", action="store_true", help="measure this checkout, print JSON")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(asyncio.run(one(args.passes))))
        return
    if args.old is None:
        parser.error("--old is required")
    codes = {"old": args.old.resolve(), "new": ROOT}
    seconds: dict[str, list[float]] = {name: [] for name in codes}
    for sample in range(args.samples):
        order = list(codes.items()) if sample % 2 == 0 else list(reversed(codes.items()))
        for name, path in order:
            env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
            out = subprocess.run(
                # This file, run with the checkout's modules and its own recorded histories.
                [sys.executable, __file__, "--one", "--passes", str(args.passes)],
                cwd=path,
                env={**env, "PYTHONPATH": str(path)},
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            seconds[name] += json.loads(out.splitlines()[-1])
            print(f"sample {sample + 1}: {name} done", flush=True)
    print("CPU per replay of the recorded histories (ms): median / min over", end=" ")
    print(f"{args.samples * args.passes} passes")
    for name, values in seconds.items():
        print(f"  {name}  {statistics.median(values) * 1000:6.1f} / {min(values) * 1000:6.1f}")
    old, new = (statistics.median(seconds[n]) for n in ("old", "new"))
    print(f"  new / old  {new / old:.2f}")


if __name__ == "__main__":
    main()
