"""The SDK's payload walks against ``payload_passes``' single walk, in one process: CPU per
activation decoded and per completion encoded, on the activations and completions of the
recorded histories (``tests/replay/histories``, but the plain-payload ``chat_cleanup.json``),
replayed once with the worker's runner stack, interceptors and data converter to collect them.
Then ``--blocks`` blocks each way, the two functions taking turns (the order alternates block
by block), each block on fresh copies of every collected message. Reported: the median over
blocks of the CPU per message, and the ratio. No server, no database: the walks alone.

Run: ``PYTHONPATH=$PWD .venv/bin/python -m bench.payload_passes_ab [--blocks 20]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import temporalio.bridge.worker as bridge_worker
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

import payload_passes
import worker
from tests.support import TEST_DATA_CONVERTER

HISTORIES = Path(__file__).resolve().parents[1] / "tests" / "replay" / "histories"
Captured = tuple[Any, bytes, Any, bool, int]  # message type, its bytes, converter, headers, limit


async def collect() -> tuple[list[Captured], list[Captured]]:
    """Every activation (before decoding) and completion (before encoding) of a replay."""
    activations: list[Captured] = []
    completions: list[Captured] = []

    def capture(into: list[Captured], passes: Callable[..., Awaitable[Any]]) -> Any:
        async def captured(message: Any, converter: Any, **options: Any) -> Any:
            # The SDK names the options (decode_headers or encode_headers, then the limit).
            headers, limit = options.values()
            into.append((type(message), message.SerializeToString(), converter, headers, limit))
            return await passes(message, converter, **options)

        return captured

    bridge_worker.decode_activation = capture(activations, payload_passes.decode_activation)
    bridge_worker.encode_completion = capture(completions, payload_passes.encode_completion)
    try:
        replayer = Replayer(
            workflows=worker.WORKFLOWS,
            data_converter=TEST_DATA_CONVERTER,
            workflow_runner=worker.ContextFreeRunner(
                worker.ReleasingRunner(worker.WORKFLOW_RUNNER)
            ),
            interceptors=worker.INTERCEPTORS,
        )
        for path in sorted(HISTORIES.glob("*.json")):
            if path.stem != "chat_cleanup":
                await replayer.replay_workflow(
                    WorkflowHistory.from_json(path.stem, path.read_text())
                )
    finally:
        payload_passes.install()
    return activations, completions


async def compare(
    what: str,
    captured: list[Captured],
    sdk: Callable[..., Any],
    ours: Callable[..., Any],
    blocks: int,
) -> None:
    cpu: dict[str, list[float]] = {"sdk": [], "payload_passes": []}
    sides = [("sdk", sdk), ("payload_passes", ours)]
    for block in range(blocks):
        for name, passes in sides if block % 2 == 0 else list(reversed(sides)):
            copies = [(kind.FromString(data), *rest) for kind, data, *rest in captured]
            started = time.process_time()
            for message, converter, headers, limit in copies:
                await passes(message, converter, headers, limit)
            cpu[name].append((time.process_time() - started) / len(copies))
    sdk_us, ours_us = (statistics.median(cpu[name]) * 1e6 for name in ("sdk", "payload_passes"))
    print(
        f"{what} ({len(captured)}): sdk {sdk_us:.1f} µs, payload_passes {ours_us:.1f} µs, "
        f"ratio {ours_us / sdk_us:.2f}"
    )


async def run(blocks: int) -> None:
    activations, completions = await collect()
    await compare(
        "decode per activation",
        activations,
        payload_passes._sdk_decode_activation,
        payload_passes.decode_activation,
        blocks,
    )
    await compare(
        "encode per completion",
        completions,
        payload_passes._sdk_encode_completion,
        payload_passes.encode_completion,
        blocks,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=20)
    asyncio.run(run(parser.parse_args().blocks))


if __name__ == "__main__":
    main()
