"""Two checkouts' SQLite engines, interleaved: CPU and trips to the driver's thread per statement.

Runs, round after round (the order alternating), a child process per checkout (``--old`` and this
one, each with its own ``store.db.create_engine`` on a SQLite file in WAL mode) that runs
``--transactions`` transactions shaped like a chat message's projection plus the API's keyed
write: one SELECT that returns a row, four writes (two INSERTs, an INSERT of two rows with
RETURNING, an UPDATE) and a COMMIT, each through ``AsyncConnection.execute`` in one event loop.
Reported per transaction, the median over rounds: the child's CPU time (``process_time``: every
thread, the event loop's and aiosqlite's), the wall time, and the calls sent to aiosqlite's
thread (each a loop -> thread -> loop round trip). ``--blocking`` adds a third contender: this
checkout's transaction on a blocking engine, one ``asyncio.to_thread`` call per transaction
(running a whole projection in one thread call, which would need blocking callers).

Run: ``PYTHONPATH=$PWD .venv/bin/python -m bench.sqlite_ab --old /tmp/old [--rounds 10]
[--transactions 2000] [--blocking]``, with ``--old`` an export of the older commit (``git archive C | tar -x
-C /tmp/old``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCHEMA = (
    "CREATE TABLE cases (id INTEGER PRIMARY KEY, version INTEGER NOT NULL, body TEXT)",
    "CREATE TABLE messages (id INTEGER PRIMARY KEY, case_id INTEGER NOT NULL"
    " REFERENCES cases (id), body TEXT)",
    "CREATE TABLE tasks (id INTEGER PRIMARY KEY, case_id INTEGER NOT NULL"
    " REFERENCES cases (id), title TEXT, deadline TEXT)",
)


async def child(database: str, transactions: int, blocking: bool = False) -> dict[str, float]:
    """In the child process: the transactions on ``store.db.create_engine``'s engine or, with
    ``blocking``, each as one ``asyncio.to_thread`` call on a blocking engine (``sync_url``, the
    same pragmas): the option of running a whole projection in one thread call."""
    import aiosqlite
    from sqlalchemy import Connection, event, text
    from sqlalchemy import create_engine as create_blocking_engine

    from store.db import _sqlite_pragmas, create_engine, sync_url

    trips = 0
    original = aiosqlite.Connection._execute

    async def counted(
        self: aiosqlite.Connection, fn: object, *args: object, **kw: object
    ) -> object:
        nonlocal trips
        trips += 1
        return await original(self, fn, *args, **kw)

    select = text("SELECT version, body FROM cases WHERE id = :id")
    message = text("INSERT INTO messages (case_id, body) VALUES (:id, :body)")
    tasks = text(
        "INSERT INTO tasks (case_id, title, deadline) VALUES (:id, 'Reply', '2026-12-03'),"
        " (:id, 'Reply', '2026-12-04') RETURNING id, deadline"
    )
    version = text("UPDATE cases SET version = version + 1 WHERE id = :id")
    url = f"sqlite:///{database}"
    engine = create_engine(url)
    blocking_engine = create_blocking_engine(sync_url(url))
    event.listen(blocking_engine, "connect", _sqlite_pragmas)

    def in_thread() -> None:
        connection: Connection
        with blocking_engine.begin() as connection:
            connection.execute(select, {"id": 1}).one()
            connection.execute(message, {"id": 1, "body": "Any news?"})
            connection.execute(message, {"id": 1, "body": "Still here"})
            connection.execute(tasks, {"id": 1}).all()
            connection.execute(version, {"id": 1})

    async def one() -> None:
        nonlocal trips
        if blocking:
            trips += 1
            await asyncio.to_thread(in_thread)
            return
        async with engine.begin() as connection:
            (await connection.execute(select, {"id": 1})).one()
            await connection.execute(message, {"id": 1, "body": "Any news?"})
            await connection.execute(message, {"id": 1, "body": "Still here"})
            (await connection.execute(tasks, {"id": 1})).all()
            await connection.execute(version, {"id": 1})

    try:
        async with engine.begin() as connection:
            for statement in SCHEMA:
                await connection.exec_driver_sql(statement)
            await connection.exec_driver_sql("INSERT INTO cases VALUES (1, 0, 'x')")
        for _ in range(50):  # warm-up: connections, statement caches
            await one()
        trips = 0
        aiosqlite.Connection._execute = counted  # type: ignore[method-assign]
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(transactions):
            await one()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        aiosqlite.Connection._execute = original  # type: ignore[method-assign]
        await engine.dispose()
        blocking_engine.dispose()
    return {
        "cpu_ms": cpu / transactions * 1000,
        "wall_ms": wall / transactions * 1000,
        "trips": trips / transactions,
    }


CHILD = """
import asyncio, importlib.util, json, sys
spec = importlib.util.spec_from_file_location("sqlite_ab", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(asyncio.run(module.child(sys.argv[2], int(sys.argv[3]), sys.argv[4] == 'blocking'))))
"""


def measure(code: Path, transactions: int, mode: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "PYTHONPATH": str(code)}
        # This file, loaded by path: the older checkout need not have it, and its own
        # ``store`` package is the one imported.
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                CHILD,
                __file__,
                str(Path(folder) / "ab.db"),
                str(transactions),
                mode,
            ],
            env=env,
            cwd=folder,  # not this checkout: `-c` puts the working directory first on sys.path
            check=True,
            capture_output=True,
            text=True,
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, required=True, help="an older checkout's directory")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument(
        "--blocking",
        action="store_true",
        help="also this checkout's transaction on a blocking engine, one asyncio.to_thread each",
    )
    parser.add_argument("--transactions", type=int, default=2000, help="per child and round")
    args = parser.parse_args()
    # name -> (checkout, mode)
    codes = {"old": (args.old.resolve(), "async"), "new": (ROOT, "async")}
    if args.blocking:
        codes["blocking"] = (ROOT, "blocking")
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in codes}
    for round_ in range(args.rounds):
        order = list(codes.items()) if round_ % 2 == 0 else list(reversed(codes.items()))
        for name, (code, mode) in order:
            samples[name].append(measure(code, args.transactions, mode))
        print(
            f"round {round_ + 1}: "
            + "  ".join(f"{n} {s[-1]['cpu_ms']:.3f} ms CPU" for n, s in samples.items()),
            flush=True,
        )
    medians = {
        name: {key: statistics.median(s[key] for s in runs) for key in runs[0]}
        for name, runs in samples.items()
    }
    ratios = [
        n["cpu_ms"] / o["cpu_ms"] for o, n in zip(samples["old"], samples["new"], strict=True)
    ]
    print("median per transaction (SELECT, 4 writes, COMMIT):")
    for name, figures in medians.items():
        print(
            f"  {name}: CPU {figures['cpu_ms']:.3f} ms  wall {figures['wall_ms']:.3f} ms"
            f"  thread trips {figures['trips']:.1f}"
        )
    print(f"  new/old CPU, median of the rounds' ratios: {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
