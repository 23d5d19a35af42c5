"""What the metrics add to the write path, per request and per activity attempt, in-process.

    PYTHONPATH=$PWD .venv/bin/python -m bench.metrics_overhead [--calls 20000] [--rounds 15]

Interleaved rounds of: a minimal ASGI app answering 200 bare and behind ``RequestMetrics`` (the
API's middleware, on a route template label); an ``ActivityInboundInterceptor`` that only
delegates, bare and as ``ActivityMetrics``' (the projections' wrapper). Prints the median and p99
per call of each and the difference, which is what every API request and every projection pays.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from types import SimpleNamespace
from typing import Any
from unittest import mock

from observability import worker as observed
from observability.http import RequestMetrics


async def _app(scope: Any, receive: Any, send: Any) -> None:
    scope["route"] = SimpleNamespace(path="/api/cases/{case_id}/chat")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


async def _send(message: Any) -> None:
    pass


async def _receive() -> Any:
    return {"type": "http.request"}


class _Next:
    async def execute_activity(self, input: Any) -> Any:
        return None


async def _round(calls: int) -> dict[str, float]:
    measured = RequestMetrics(_app)
    scope = {"type": "http", "method": "POST", "path": "/api/cases/x/chat"}
    inbound = observed._ActivityMetricsInbound(_Next())  # type: ignore[arg-type]
    bare_next = _Next()
    out: dict[str, float] = {}
    for name, call in (
        ("request bare", lambda: _app(dict(scope), _receive, _send)),
        ("request measured", lambda: measured(dict(scope), _receive, _send)),
        ("activity bare", lambda: bare_next.execute_activity(None)),
        ("activity measured", lambda: inbound.execute_activity(None)),  # type: ignore[arg-type]
    ):
        start = time.perf_counter()
        for _ in range(calls):
            await call()
        out[name] = (time.perf_counter() - start) / calls
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    info = SimpleNamespace(activity_type="project_case")
    samples: dict[str, list[float]] = {}
    with mock.patch.object(observed.activity, "info", lambda: info):
        for _ in range(args.rounds):
            for name, seconds in asyncio.run(_round(args.calls)).items():
                samples.setdefault(name, []).append(seconds)
    print(f"{'per call':<20} {'median us':>10} {'p99 us':>8}")
    for name, values in samples.items():
        p99 = sorted(values)[max(0, int(len(values) * 0.99) - 1)]
        print(f"{name:<20} {statistics.median(values) * 1e6:>10.2f} {p99 * 1e6:>8.2f}")
    for kind in ("request", "activity"):
        extra = statistics.median(samples[f"{kind} measured"]) - statistics.median(
            samples[f"{kind} bare"]
        )
        print(f"{kind}: metrics add {extra * 1e6:.2f} us per call")


if __name__ == "__main__":
    main()
