"""What webhook fan-out costs the write path when nobody subscribes: a chat message's projection
(``ProjectionActivities.project_case``: the case's version, the message, two tasks, their
visibility, two events) with the fan-out (one SELECT of ``webhook_subscriptions``) against the
same projection with ``write_events`` as it was before issue 12's webhooks (the events' upsert
without ``RETURNING``, no fan-out),
interleaved block by block in one process on one engine (the order alternating each round).
Reported per projection: median and p99 wall time, median CPU time, and the ratio.

Run: ``PYTHONPATH=$PWD .venv/bin/python -m bench.webhook_fanout_ab [--rounds 20] [--per-round
200] [--database-url postgresql://...]`` (default: a SQLite file in a temporary folder).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

import activities.projection as projection
from domain.enums import OrgKind
from domain.tasks import OutboxEvent
from store.db import create_engine, session_factory
from store.migrate import upgrade
from tests.store.test_projection_statements import chat_message
from tests.support import make_actor


async def _events_only(db: Any, events: Sequence[OutboxEvent]) -> set[Any]:
    """``write_events`` as it was before webhooks: the events' upsert (no ``RETURNING``), no
    fan-out."""
    if events:
        connection = await db.connection() if isinstance(db, AsyncSession) else db
        await projection._upsert(
            connection,
            projection.EVENTS,
            [
                {
                    "id": event.id,
                    "type": event.type,
                    "org_id": event.org_id,
                    "case_id": event.case_id,
                    "occurred_at": event.occurred_at,
                    "payload": event.model_dump(mode="json")["payload"],
                    "delivered_at": None,
                }
                for event in events
            ],
        )
    return set()


def _p99(values: list[float]) -> float:
    return sorted(values)[max(0, round(len(values) * 0.99) - 1)]


async def measure(database_url: str, rounds: int, per_round: int) -> dict[str, dict[str, float]]:
    upgrade(database_url)
    engine = create_engine(database_url)
    try:
        sessions = session_factory(engine)
        creditor = await make_actor(sessions, OrgKind.CREDITOR)
        partner = await make_actor(sessions, OrgKind.PARTNER)
        run, _ = await chat_message(sessions, creditor, partner)
        for _ in range(50):  # warm-up: statement caches, the connection pool
            await run()
        real = projection.write_events
        contenders = {"with fan-out": real, "baseline (no fan-out)": _events_only}
        wall: dict[str, list[float]] = {name: [] for name in contenders}
        cpu: dict[str, list[float]] = {name: [] for name in contenders}
        try:
            for round_ in range(rounds):
                names = list(contenders) if round_ % 2 == 0 else list(reversed(contenders))
                for name in names:
                    projection.write_events = contenders[name]
                    for _ in range(per_round):
                        started, used = time.perf_counter(), time.process_time()
                        await run()
                        wall[name].append(time.perf_counter() - started)
                        cpu[name].append(time.process_time() - used)
        finally:
            projection.write_events = real
    finally:
        await engine.dispose()
    return {
        name: {
            "median_ms": statistics.median(wall[name]) * 1000,
            "p99_ms": _p99(wall[name]) * 1000,
            "cpu_median_ms": statistics.median(cpu[name]) * 1000,
        }
        for name in contenders
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--per-round", type=int, default=200)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="caseloop-fanout-") as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'caseloop.db'}"
        figures = asyncio.run(measure(url, args.rounds, args.per_round))
    for name, row in figures.items():
        print(
            f"{name:24} median {row['median_ms']:.3f} ms  p99 {row['p99_ms']:.3f} ms  "
            f"cpu median {row['cpu_median_ms']:.3f} ms"
        )
    base, new = figures["baseline (no fan-out)"], figures["with fan-out"]
    print(
        f"ratio with/baseline: median {new['median_ms'] / base['median_ms']:.3f}, "
        f"p99 {new['p99_ms'] / base['p99_ms']:.3f}, cpu {new['cpu_median_ms'] / base['cpu_median_ms']:.3f}"
    )


if __name__ == "__main__":
    main()
