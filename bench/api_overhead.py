"""The API's own work per action, apart from the time it waits on Temporal (issue 10, "For scale").

Starts its own Temporal dev server (the bundled binary), a read model in a temporary SQLite file
(or BENCH_DATABASE_URL) and the worker as a separate process, then serves the real app in this
process over ASGI (no sockets: the figures are the app's). On one warm case it sends, interleaved,
``POST /api/cases/{id}/chats`` and ``POST /api/cases/{id}/status``, each with an Idempotency-Key
(as a careful client does) and without one (as ``bench latency`` sends them), under every variant
named in ``VARIANTS`` (the API-key cache on or off), and reports for each per request:

- ``wall``: the request end to end through the app;
- ``temporal``: the time the request waited for its workflow update (``execute_update``);
- ``api``: wall minus temporal, i.e. the API's own work (authentication, idempotency, reading the
  case and the answer, building the response, middleware) including its database round trips;
- ``cpu``: this process's CPU time (all its threads: the app, the database driver's, the Temporal
  client's) over the request; the worker and the dev server are other processes; ``api_cpu``:
  the same less the CPU time spent while the update was awaited (the Temporal client's encoding,
  encryption, RPC and decoding of the result); ``api_loop_cpu``: of that, the event loop's
  thread alone (the rest is the database driver's thread and the Temporal client's runtime);
- ``db``: the time in database statements and commits, and how many there were.

Run: ``PYTHONPATH=. .venv/bin/python -m bench.api_overhead [--rounds 200] [--profile out.html]
[--old /tmp/old]``. ``--old`` also runs, interleaved, the same actions through two API processes
over HTTP: one of an older checkout, one of this code (wall time, and each process's CPU time).
``--profile`` writes a profile of the last variant's requests: cProfile statistics for a\n``.pstats`` file, else pyinstrument's HTML (async mode).
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.engine import Engine
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from domain import search_attributes as sa
from domain.enums import OrgKind
from settings import Settings
from store.db import create_engine, session_factory
from store.migrate import upgrade
from tests.support import (
    TEST_DATA_CONVERTER,
    TEST_PAYLOAD_KEYS,
    Actor,
    bundled_binary,
    case_body,
    make_actor,
)

ROOT = Path(__file__).resolve().parents[1]
# Each variant: settings it changes. Same process, same case, interleaved request by request.
VARIANTS: dict[str, dict[str, Any]] = {
    "key cache off": {"api_key_cache_seconds": 0},
    "key cache on": {},
}


@dataclass
class Spent:
    temporal: float = 0.0
    temporal_cpu: float = 0.0
    temporal_thread: float = 0.0
    db: float = 0.0
    statements: int = 0


_spent: contextvars.ContextVar[Spent | None] = contextvars.ContextVar("spent", default=None)


def _instrument() -> None:
    """Time every workflow update and every database statement and commit of the app."""
    original = WorkflowHandle.execute_update

    async def timed_update(self: Any, *args: Any, **kwargs: Any) -> Any:
        started, cpu_started = time.perf_counter(), time.process_time()
        thread_started = time.thread_time()
        try:
            return await original(self, *args, **kwargs)
        finally:
            if (spent := _spent.get()) is not None:
                spent.temporal_thread += time.thread_time() - thread_started
                spent.temporal += time.perf_counter() - started
                spent.temporal_cpu += time.process_time() - cpu_started

    WorkflowHandle.execute_update = timed_update  # type: ignore[method-assign]

    def before(conn: Any, *_: Any) -> None:
        conn.info["bench_started"] = time.perf_counter()

    def after(conn: Any, *_: Any) -> None:
        if (spent := _spent.get()) is not None:
            spent.db += time.perf_counter() - conn.info.pop("bench_started", time.perf_counter())
            spent.statements += 1

    event.listen(Engine, "before_cursor_execute", before)
    event.listen(Engine, "after_cursor_execute", after)
    event.listen(Engine, "begin", before)
    event.listen(Engine, "commit", after)
    event.listen(Engine, "rollback", after)


@dataclass
class Samples:
    wall: list[float] = field(default_factory=list)
    temporal: list[float] = field(default_factory=list)
    api: list[float] = field(default_factory=list)
    db: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    api_cpu: list[float] = field(default_factory=list)
    api_loop_cpu: list[float] = field(default_factory=list)
    statements: list[int] = field(default_factory=list)

    def add(self, wall: float, cpu: float, spent: Spent, thread: float = 0.0) -> None:
        self.wall.append(wall)
        self.cpu.append(cpu)
        self.api_cpu.append(cpu - spent.temporal_cpu)
        self.api_loop_cpu.append(thread - spent.temporal_thread)
        self.temporal.append(spent.temporal)
        self.api.append(wall - spent.temporal)
        self.db.append(spent.db)
        self.statements.append(spent.statements)

    def summary(self) -> dict[str, float]:
        def ms(values: list[float], q: float) -> float:
            ordered = sorted(values)
            return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

        return {
            "n": len(self.wall),
            "wall_p50": ms(self.wall, 0.5),
            "wall_p99": ms(self.wall, 0.99),
            "temporal_p50": ms(self.temporal, 0.5),
            "api_p50": ms(self.api, 0.5),
            "api_p99": ms(self.api, 0.99),
            "cpu_p50": ms(self.cpu, 0.5),
            "api_cpu_p50": ms(self.api_cpu, 0.5),
            "api_loop_cpu_p50": ms(self.api_loop_cpu, 0.5),
            "db_p50": ms(self.db, 0.5),
            "db_round_trips": statistics.median(self.statements),
        }


class WorkerProcess:
    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.log = cwd / "worker.log"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "worker"], env=env, cwd=cwd, stdout=log, stderr=log
            )

    async def polling(self) -> None:
        for _ in range(600):
            if b"worker polling task queue" in self.log.read_bytes():
                return
            assert self.process.poll() is None, self.log.read_text()
            await asyncio.sleep(0.1)
        raise RuntimeError("the worker did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


@asynccontextmanager
async def stack(
    tmp: Path,
) -> AsyncIterator[tuple[WorkflowEnvironment, Settings, dict[str, str]]]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=bundled_binary("temporal"),
        data_converter=TEST_DATA_CONVERTER,
        search_attributes=sa.ALL,
        dev_server_log_level="error",
    )
    url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{tmp / 'caseloop.db'}"
    upgrade(url)
    settings = Settings(
        database_url=url,
        temporal_task_queue=f"bench-{uuid.uuid4()}",
        rate_limit_per_minute=0,
        payload_keys=TEST_PAYLOAD_KEYS,
        blob_dir=tmp / "blobs",
        _env_file=None,
    )
    process_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "DATABASE_"))},
        "PAYLOAD_KEYS": TEST_PAYLOAD_KEYS,
        "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        "TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
        "DATABASE_URL": url,
        "VAR_DIR": str(tmp / "var"),
        "PYTHONPATH": str(ROOT),
    }
    worker = WorkerProcess(process_env, tmp)
    try:
        await worker.polling()
        yield env, settings, process_env
    finally:
        worker.stop()
        await env.shutdown()


async def warm_case(
    client: httpx.AsyncClient, creditor: Actor, partner: Actor, ops: Actor
) -> tuple[str, str]:
    """A case In Collection with the partner, its workflow cached in the worker; and the
    creditor's bank account."""
    ok = await client.post("/api/account/contract/sign", headers=creditor.headers)
    assert ok.status_code == 200, ok.text
    bank = await client.post(
        "/api/bank-accounts",
        json={"iban": "DK5000400440116243", "holderName": "Acme ApS", "currencyCode": "DKK"},
        headers=creditor.headers,
    )
    assert bank.status_code == 201, bank.text
    body = case_body(bankAccountId=bank.json()["id"])
    created = await client.post("/api/cases", json=body, headers=creditor.headers)
    assert created.status_code == 201, created.text
    cid = str(created.json()["caseId"])
    for _ in range(300):
        got = await client.get(f"/api/cases/{cid}", headers=creditor.headers)
        if got.json()["status"] == "Validated":
            break
        await asyncio.sleep(0.1)
    assign = await client.post(
        f"/api/cases/{cid}/assign", json={"partnerId": str(partner.org_id)}, headers=ops.headers
    )
    assert assign.status_code == 200, assign.text
    accept = await client.post(f"/api/cases/{cid}/accept", headers=partner.headers)
    assert accept.status_code == 200, accept.text
    return cid, str(bank.json()["id"])


STATUSES = (
    {"status": "Payment Plan", "subStatus": "Plan active", "note": "bench"},
    {"status": "In Collection", "subStatus": "First reminder sent", "note": "bench"},
)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


Action = Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]]


async def old_and_new(
    old: Path, env: dict[str, str], tmp: Path, rounds: int, actions: dict[str, Action]
) -> dict[tuple[str, str], Samples]:
    """The same actions through two API processes over HTTP, one running the code checked out at
    ``old``, one this checkout, interleaved request by request. Only wall time can be split out
    here; ``cpu_p50`` is each API process's whole CPU time over the requests of that kind, per
    request (the same figure in every sample)."""
    processes: dict[str, subprocess.Popen[bytes]] = {}
    clients: dict[str, httpx.AsyncClient] = {}
    for name, code in (("old code (http)", old), ("new code (http)", ROOT)):
        port = free_port()
        processes[name] = start_api(code, env, port)
        clients[name] = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60)
    try:
        for client in clients.values():
            for _ in range(300):
                try:
                    if (await client.get("/api/health")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        samples = {(n, kind): Samples() for n in clients for kind in actions}
        # Each API process's CPU time over each kind of request (its clock ticks are 10 ms, so
        # only the sum over many requests says something).
        cpu = {key: 0.0 for key in samples}
        step = 10_000
        names = list(clients)
        for i in range(-10, rounds):
            for kind, action in actions.items():
                # Old first in even rounds, new first in odd ones: neither always goes first.
                for name in names if i % 2 == 0 else names[::-1]:
                    step += 1
                    before = cpu_seconds(processes[name].pid)
                    started = time.perf_counter()
                    response = await action(clients[name], step)
                    wall = time.perf_counter() - started
                    assert response.status_code < 300, response.text
                    if i >= 0:
                        cpu[(name, kind)] += cpu_seconds(processes[name].pid) - before
                        samples[(name, kind)].add(wall, 0.0, Spent())
        for key, sample in samples.items():
            sample.cpu = [cpu[key] / len(sample.wall)] * len(sample.wall)
        return samples
    finally:
        for client in clients.values():
            await client.aclose()
        for process in processes.values():
            process.terminate()
            process.wait(30)


def start_api(code: Path, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    """``python -m api.server`` of the code checked out at ``code``, on ``port``."""
    return subprocess.Popen(
        [sys.executable, "-m", "api.server"],
        env={
            **env,
            "PYTHONPATH": str(code),
            "API_HOST": "127.0.0.1",
            "API_PORT": str(port),
            "RATE_LIMIT_PER_MINUTE": "0",
        },
        cwd=code,
        stdout=subprocess.DEVNULL,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def main(
    rounds: int,
    profile: Path | None,
    out: Path,
    old: Path | None = None,
    http_only: bool = False,
) -> dict[str, Any]:
    _instrument()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        async with stack(tmp) as (env, settings, process_env):
            engine = create_engine(settings.database_url)
            sessions = session_factory(engine)
            creditor = await make_actor(sessions, OrgKind.CREDITOR)
            partner = await make_actor(sessions, OrgKind.PARTNER)
            ops = await make_actor(sessions, OrgKind.OPS)
            await engine.dispose()
            apps = {
                name: create_app(settings.model_copy(update=change), temporal=env.client)
                for name, change in VARIANTS.items()
            }
            clients: dict[str, httpx.AsyncClient] = {}
            lifespans = AsyncExitStack()
            for name, app in apps.items():
                await lifespans.enter_async_context(app.router.lifespan_context(app))
                clients[name] = httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://bench.test"
                )
            first = next(iter(clients.values()))
            cid, bank_id = await warm_case(first, creditor, partner, ops)
            actions: dict[str, Action] = {
                "chat": lambda c, i: c.post(
                    f"/api/cases/{cid}/chats",
                    json={"message": f"bench message {i}"},
                    headers={**partner.headers, "Idempotency-Key": str(uuid.uuid4())},
                ),
                "status": lambda c, i: c.post(
                    f"/api/cases/{cid}/status",
                    json=STATUSES[i % 2],
                    headers={**partner.headers, "Idempotency-Key": str(uuid.uuid4())},
                ),
                # As ``bench latency`` sends them: no Idempotency-Key.
                "chat, no key": lambda c, i: c.post(
                    f"/api/cases/{cid}/chats",
                    json={"message": f"bench message {i}"},
                    headers=partner.headers,
                ),
                "status, no key": lambda c, i: c.post(
                    f"/api/cases/{cid}/status", json=STATUSES[i % 2], headers=partner.headers
                ),
                # A new case each time (as ``bench fullcase`` creates them: no key).
                "create, no key": lambda c, i: c.post(
                    "/api/cases", json=case_body(bankAccountId=bank_id), headers=creditor.headers
                ),
            }
            expected = {
                "chat": 201,
                "status": 200,
                "chat, no key": 201,
                "status, no key": 200,
                "create, no key": 201,
            }
            samples = {(n, kind): Samples() for n in VARIANTS for kind in actions}
            profiler: Any = None
            if profile is not None and profile.suffix == ".pstats":
                import cProfile

                profiler = cProfile.Profile()
                profiler.start = profiler.enable
                profiler.stop = profiler.disable
            elif profile is not None:
                from pyinstrument import Profiler

                profiler = Profiler(async_mode="enabled", interval=0.0002)
            step = 0
            for i in range(-10, 0 if http_only else rounds):  # ten warm-up rounds, not counted
                for kind, action in actions.items():
                    for name, client in clients.items():
                        step += 1
                        spent = Spent()
                        token = _spent.set(spent)
                        measured = profiler is not None and name == list(clients)[-1] and i >= 0
                        if measured:
                            assert profiler is not None
                            profiler.start()
                        started, cpu_started = time.perf_counter(), time.process_time()
                        thread_started = time.thread_time()
                        response = await action(client, step)
                        wall = time.perf_counter() - started
                        cpu = time.process_time() - cpu_started
                        thread = time.thread_time() - thread_started
                        if measured:
                            assert profiler is not None
                            profiler.stop()
                        _spent.reset(token)
                        assert response.status_code == expected[kind], response.text
                        if i >= 0:
                            samples[(name, kind)].add(wall, cpu, spent, thread)
            for client in clients.values():
                await client.aclose()
            await lifespans.aclose()
            if old is not None:
                samples.update(await old_and_new(old, process_env, tmp, rounds, actions))
            if profile is not None and profile.suffix == ".pstats":
                profiler.dump_stats(profile)
            elif profiler is not None and profile is not None:
                write(profile, profiler.output_html())
                print(profiler.output_text(unicode=False, color=False, show_all=False))
    result = {f"{name} / {kind}": s.summary() for (name, kind), s in samples.items() if s.wall}
    header = f"{'variant / action':28} " + " ".join(f"{k:>14}" for k in next(iter(result.values())))
    print(header)
    for label, figures in result.items():
        print(f"{label:28} " + " ".join(f"{v:>14}" for v in figures.values()))
    write(out, json.dumps(result, indent=1))
    return result


def write(path: Path, text: str) -> None:
    """Write a result file (a moment's blocking, after the measurements)."""
    path.write_text(text)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--profile", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("bench-api-overhead.json"))
    parser.add_argument(
        "--old",
        type=Path,
        default=None,
        help="a checkout of older code (git worktree add /tmp/old <commit>): also compare its "
        "API process with this one's over HTTP, interleaved",
    )
    parser.add_argument(
        "--http-only",
        action="store_true",
        help="with --old: only the comparison of the two API processes over HTTP",
    )
    options = parser.parse_args()
    asyncio.run(main(options.rounds, options.profile, options.out, options.old, options.http_only))
