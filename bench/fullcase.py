"""(b) The full-case scenario through the API: create → contract signed → bank account → assign →
accept → 2 messages → status change, at concurrency 1 and 8, in cases per second; against a bare
workflow doing the same 8 round trips (update-with-start + 7 updates). Caseloop and bare batches
alternate, round by round.

Besides the throughput, a breakdown: each step's wall time (p50/p99 per concurrency level, the
caseloop step next to the bare round trip it stands for), how many ``GET /api/cases/{id}`` the
client needed until the case was Validated, and CPU per case (dev server + worker + API vs dev
server + bare worker + the calling process), all from the same interleaved batches.

Beside them, the design's floor (bench/floor.py: caseloop's history for a full case with none of
its code, its shape checked against a caseloop case's first) and the same floor behind a bare
FastAPI app (bench/floor_http.py): how much of bare the design itself leaves, and what
caseloop's own code costs beyond it."""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench import bare, floor, floor_http
from bench.flows import STATUS_CYCLE, Api, Parties
from bench.harness import (
    Actor,
    Child,
    CpuMeter,
    Report,
    Stack,
    free_port,
    phase,
    stack,
    stack_processes,
    start_bare_worker,
    start_child,
    summary,
    wait_for,
)
from bench.harness import _python_env as python_env
from domain.enums import OrgKind
from domain.ids import case_workflow_id, creditor_workflow_id

NAME = "fullcase"
CASELOOP = ("server", "worker", "api", "database")
BARE = ("server", "bare_worker", "client")
FLOOR = ("server", "floor_worker", "client")
FLOOR_HTTP = ("server", "floor_worker", "floor_api")

# Each caseloop step and the bare round trip it stands for (the poll has none).
STEPS = (
    ("create", "start"),
    ("sign contract", "contract"),
    ("bank account", "bank account"),
    ("until Validated", None),
    ("assign", "assign"),
    ("accept", "accept"),
    ("message 1", "message 1"),
    ("message 2", "message 2"),
    ("status change", "status change"),
)
BARE_CHANGES = (
    ("contract", {"contract": "signed"}),
    ("bank account", {"bankAccount": "DK5000400440116243"}),
    ("assign", {"partner": "assigned"}),
    ("accept", {"status": "In Collection"}),
    ("message 1", {"message1": "We have sent the first reminder."}),
    ("message 2", {"message2": "Thanks, keep me posted."}),
    ("status change", {"status": "In Collection", "subStatus": "First reminder sent"}),
)


@dataclass
class StepCpu:
    """CPU seconds per process that one step caused: read before the step and again ``settle``
    seconds after it answered (so work that follows the answer counts too), less what the
    processes use when idle (pollers) over that time."""

    processes: dict[str, Callable[[], float]]
    settle: float = 0.4
    idle: dict[str, float] = field(default_factory=dict)  # CPU seconds per second

    async def measure_idle(self, seconds: float = 3) -> None:
        before, started = self._read(), time.perf_counter()
        await asyncio.sleep(seconds)
        wall = time.perf_counter() - started
        self.idle = {n: (v - before[n]) / wall for n, v in self._read().items()}

    def _read(self) -> dict[str, float]:
        return {name: read() for name, read in self.processes.items()}


class Steps:
    """Wall time of each step of a scenario, and the polls, per concurrency level; with
    ``cpu``, also the CPU each step caused (steps then run with a pause after each)."""

    def __init__(self, cpu: StepCpu | None = None) -> None:
        self.times: dict[str, list[float]] = {}
        self.polls: list[int] = []
        self.cpu = cpu
        self.cpu_used: dict[str, list[dict[str, float]]] = {}

    async def time(self, name: str, call: Awaitable[object]) -> Any:
        before = self.cpu._read() if self.cpu else {}
        started = time.perf_counter()
        result = await call
        self.times.setdefault(name, []).append(time.perf_counter() - started)
        if self.cpu:
            await asyncio.sleep(self.cpu.settle)
            wall = time.perf_counter() - started
            used = {
                n: max(0.0, v - before[n] - self.cpu.idle.get(n, 0.0) * wall)
                for n, v in self.cpu._read().items()
            }
            self.cpu_used.setdefault(name, []).append(used)
        return result

    def cpu_ms(self, name: str | None, processes: tuple[str, ...]) -> dict[str, float]:
        """Median CPU milliseconds of step ``name`` per process in ``processes``, and "total"."""
        samples = self.cpu_used.get(name or "", [])
        if not samples:
            return {}
        per = {p: statistics.median(s[p] for s in samples) * 1000 for p in processes}
        per["total"] = statistics.median(sum(s[p] for p in processes) for s in samples) * 1000
        return per


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8], help="levels")
    parser.add_argument("--full-rounds", type=int, default=3, help="interleaved rounds per level")
    parser.add_argument(
        "--cases-per-client",
        type=int,
        default=3,
        help="cases each concurrent client runs per batch",
    )
    parser.add_argument(
        "--cpu-cases",
        type=int,
        default=3,
        help="cases (and bare cases, interleaved) run one step at a time, each step followed by "
        "a pause, for the CPU each step costs (0: skip)",
    )


async def new_creditor(s: Stack, partner: Actor, ops: Actor) -> Parties:
    """A creditor that has not signed its contract yet, with a bank account on file (set up
    outside the timed scenario: the scenario signs and assigns the account to the case)."""
    creditor = await s.actor(OrgKind.CREDITOR)
    account = await Api(s.http).new_bank_account(creditor)
    return Parties(creditor, partner, ops, account)


async def full_case(api: Api, who: Parties, steps: Steps | None = None) -> str:
    """The scenario, as a creditor onboarding with its first case and a partner working it;
    returns the case's id."""
    steps = steps or Steps()
    created = await steps.time("create", api.create_case(who.creditor))
    case_id = str(created["caseId"])
    await steps.time("sign contract", api.sign_contract(who.creditor))
    case = await steps.time(
        "bank account", api.set_bank_account(who.creditor, case_id, who.bank_account)
    )
    # Assigning needs a Validated case; the API may finish validating after it answered
    # (docs/api.md, "Intake"), so the client reads the case until it is, unless the answer
    # already shows it Validated.
    steps.polls.append(
        await steps.time(
            "until Validated",
            api.until_status(who.creditor, case_id, "Validated", answer=case),
        )
    )
    await steps.time("assign", api.assign(who.ops, case_id, who.partner))
    await steps.time("accept", api.accept(who.partner, case_id))
    await steps.time(
        "message 1", api.post_message(who.partner, case_id, "We have sent the first reminder.")
    )
    await steps.time(
        "message 2", api.post_message(who.creditor, case_id, "Thanks, keep me posted.")
    )
    await steps.time("status change", api.change_status(who.partner, case_id, **STATUS_CYCLE[0]))
    return case_id


async def bare_case(s: Stack, steps: Steps | None = None) -> None:
    """The same 8 round trips on a bare workflow."""
    steps = steps or Steps()
    handle = await steps.time(
        "start", bare.start(s.bare_client, s.bare_task_queue, {"status": "Created"})
    )
    for name, change in BARE_CHANGES:
        await steps.time(name, bare.change(handle, change))


def start_floor_worker(s: Stack) -> tuple[Child, str]:
    """The floor's worker (bench/floor.py) on the stack's dev server, and its task queue."""
    queue = f"floor-{uuid.uuid4().hex[:8]}"
    child = start_bare_worker(
        s.workdir, s.server.address, queue, name="floor", module="bench.floor"
    )
    return child, queue


async def start_floor_api(s: Stack, queue: str) -> tuple[Child, str]:
    """The floor's HTTP API (bench/floor_http.py) for the floor's task queue, and its URL."""
    port = free_port()
    child = start_child(
        "floor-api",
        [sys.executable, "-m", "bench.floor_http", s.server.address, queue, str(port)],
        env=python_env({}),
        cwd=s.workdir,
    )
    url = f"http://127.0.0.1:{port}"

    async def up() -> bool:
        child.check()
        try:
            async with httpx.AsyncClient(base_url=url) as http:
                return (await http.get("/openapi.json")).status_code == 200
        except httpx.TransportError:
            return False

    await wait_for(up, seconds=60, every=0.2)
    return child, url


async def batch(jobs: list[Callable[[], Awaitable[object]]], concurrency: int) -> float:
    """Run ``jobs`` with ``concurrency`` clients; returns cases per second."""
    queue = list(jobs)
    started = time.perf_counter()

    async def client() -> None:
        while queue:
            await queue.pop()()

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return len(jobs) / (time.perf_counter() - started)


async def run(args: argparse.Namespace) -> Report:
    report = Report(
        NAME,
        {
            "concurrency": args.concurrency,
            "rounds": args.full_rounds,
            "cases_per_client": args.cases_per_client,
        },
    )
    async with stack(database=args.database) as s:
        floor_worker, floor_queue = start_floor_worker(s)
        floor_api: Child | None = None
        try:
            floor_api, floor_url = await start_floor_api(s, floor_queue)
            async with httpx.AsyncClient(base_url=floor_url, timeout=60) as floor_client:
                return await _measure(
                    args, report, s, Floor(floor_worker, floor_queue, floor_api, floor_client)
                )
        finally:
            if floor_api is not None:
                floor_api.stop()
            floor_worker.stop()


@dataclass
class Floor:
    """The floor's processes (bench/floor.py, bench/floor_http.py)."""

    worker: Child
    queue: str
    api: Child
    http: httpx.AsyncClient


async def _measure(args: argparse.Namespace, report: Report, s: Stack, fl: Floor) -> Report:
    api = Api(s.http)
    partner = await s.actor(OrgKind.PARTNER)
    ops = await s.actor(OrgKind.OPS)
    with phase("warm-up, and the floor's history shape against caseloop's"):
        who = await new_creditor(s, partner, ops)
        case_id = await full_case(api, who)
        await bare_case(s)
        floor_case_id, floor_account_id = await floor.full_case(s.bare_client, fl.queue)
        await floor_http.full_case(fl.http)
        await asyncio.sleep(1)  # the account's task after the bank account follows the answer
        shapes = {
            "case": (
                await floor.shape(s.client, case_workflow_id(case_id)),
                await floor.shape(s.bare_client, floor_case_id),
            ),
            "account": (
                await floor.shape(s.client, creditor_workflow_id(who.creditor.org_id)),
                await floor.shape(s.bare_client, floor_account_id),
            ),
        }
    meter = CpuMeter({**stack_processes(s), "floor_worker": fl.worker.cpu, "floor_api": fl.api.cpu})
    rates: dict[int, dict[str, list[float]]] = {}
    steps: dict[int, dict[str, Steps]] = {}
    for level in args.concurrency:
        size = level * args.cases_per_client
        rates[level] = {"caseloop": [], "bare": [], "floor": [], "floor_http": []}
        steps[level] = {"caseloop": Steps(), "bare": Steps()}
        for _ in range(args.full_rounds):
            with phase(f"concurrency {level}: creditors for {size} cases"):
                creditors = [await new_creditor(s, partner, ops) for _ in range(size)]
            with phase(f"concurrency {level}: {size} caseloop cases"):
                meter.start()
                rates[level]["caseloop"].append(
                    await batch(
                        [
                            functools.partial(full_case, api, c, steps[level]["caseloop"])
                            for c in creditors
                        ],
                        level,
                    )
                )
                meter.stop(f"caseloop {level}", count=CASELOOP)
            with phase(f"concurrency {level}: {size} bare cases"):
                meter.start()
                bare_case_timed = functools.partial(bare_case, s, steps[level]["bare"])
                rates[level]["bare"].append(
                    await batch([bare_case_timed for _ in range(size)], level)
                )
                meter.stop(f"bare {level}", count=BARE)
            with phase(f"concurrency {level}: {size} floor cases"):
                meter.start()
                floor_case = functools.partial(floor.full_case, s.bare_client, fl.queue)
                rates[level]["floor"].append(await batch([floor_case for _ in range(size)], level))
                meter.stop(f"floor {level}", count=FLOOR)
            with phase(f"concurrency {level}: {size} floor cases behind HTTP"):
                meter.start()
                floor_http_case = functools.partial(floor_http.full_case, fl.http)
                rates[level]["floor_http"].append(
                    await batch([floor_http_case for _ in range(size)], level)
                )
                meter.stop(f"floor_http {level}", count=FLOOR_HTTP)
            s.check()
            fl.worker.check()
            fl.api.check()
    cpu_steps = {"caseloop": Steps(), "bare": Steps()}
    if args.cpu_cases:
        with phase(f"CPU per step: {args.cpu_cases} cases each, one step at a time"):
            sampler = StepCpu(meter.processes)
            await sampler.measure_idle()
            cpu_steps = {"caseloop": Steps(sampler), "bare": Steps(sampler)}
            for _ in range(args.cpu_cases):
                who = await new_creditor(s, partner, ops)
                await full_case(api, who, cpu_steps["caseloop"])
                await bare_case(s, cpu_steps["bare"])
            s.check()
    cases = {level: level * args.cases_per_client * args.full_rounds for level in rates}
    cpu = {label: seconds * 1000 for label, seconds in meter.totals.items()}
    report.data = {
        "cases_per_second": rates,
        "step_ms": {
            level: {
                side: {n: summary([t * 1000 for t in ts]) for n, ts in measured.times.items()}
                for side, measured in sides.items()
            }
            for level, sides in steps.items()
        },
        "polls_per_case": {level: sides["caseloop"].polls for level, sides in steps.items()},
        "cpu_ms_per_step": {
            "caseloop": {n: cpu_steps["caseloop"].cpu_ms(n, CASELOOP) for n, _ in STEPS},
            "bare": {n: cpu_steps["bare"].cpu_ms(n, BARE) for _, n in STEPS if n},
        },
        "cpu_ms_per_case": {
            label: total / cases[int(label.split()[-1])] for label, total in cpu.items()
        },
        "cpu_ms_per_case_by_process": {
            label: {
                name: seconds * 1000 / cases[int(label.split()[-1])]
                for name, seconds in parts.items()
            }
            for label, parts in meter.by_process.items()
        },
    }
    report.data["history_shapes"] = {
        side: {"caseloop": dict(mine), "floor": dict(floors)}
        for side, (mine, floors) in shapes.items()
    }
    for side, (mine, floors) in shapes.items():
        differences = {
            kind: (mine[kind], floors[kind])
            for kind in mine.keys() | floors.keys()
            if mine[kind] != floors[kind]
        }
        row = report.figure(
            f"  history events of the {side}, caseloop vs floor",
            sum(mine.values()),
            sum(floors.values()),
            note="same types and counts"
            if not differences
            else f"differ (caseloop, floor): {differences}",
        )
        row.passed = not differences
        row.target = "same shape"
    for level, measured in rates.items():
        caseloop = statistics.median(measured["caseloop"])
        bare_rate = statistics.median(measured["bare"])
        report.figure(
            f"full cases/s, concurrency {level}",
            caseloop,
            bare_rate,
            unit="cases/s",
            at_least=0.4,
            target="≥ 0.4x (aim 0.6x)",
        )
        for side, name, source in (
            ("floor", "floor", "the design's floor: bench/floor.py"),
            (
                "floor_http",
                "floor behind HTTP",
                "with a bare FastAPI in front: bench/floor_http.py",
            ),
        ):
            rate = statistics.median(measured[side])
            report.figure(
                f"  {name} cases/s, concurrency {level}",
                rate,
                bare_rate,
                unit="cases/s",
                note=f"({source})",
            )
            report.figure(
                f"  caseloop / {name}, concurrency {level}",
                caseloop,
                rate,
                unit="cases/s",
                note="(what caseloop's own code costs beyond it)",
            )
    for level, sides in steps.items():
        _breakdown(report, level, sides, cpu, cases[level], meter.by_process)
    for step, counterpart in STEPS:
        ours = cpu_steps["caseloop"].cpu_ms(step, CASELOOP)
        base = cpu_steps["bare"].cpu_ms(counterpart, BARE)
        if ours:
            report.figure(
                f"  CPU {step}",
                ours["total"],
                base.get("total"),
                unit="ms",
                note="(breakdown) server {server:.0f} worker {worker:.0f} api {api:.0f}".format(
                    **ours
                ),
            )
    return report


def _breakdown(
    report: Report,
    level: int,
    sides: dict[str, Steps],
    cpu: dict[str, float],
    cases: int,
    by_process: dict[str, dict[str, float]],
) -> None:
    """The per-step rows of one concurrency level (no targets: they explain the throughput)."""
    mine, theirs = sides["caseloop"].times, sides["bare"].times
    for step, counterpart in STEPS:
        ours = summary([t * 1000 for t in mine.get(step, [])])
        base = summary([t * 1000 for t in theirs.get(counterpart, [])]) if counterpart else None
        for q in ("p50", "p99"):
            report.figure(
                f"  c{level} {step} {q}",
                ours[q],
                base[q] if base else None,
                unit="ms",
                note="(breakdown)",
            )
    polls = sides["caseloop"].polls
    report.figure(
        f"  c{level} GETs until Validated, mean",
        statistics.fmean(polls) if polls else None,
        note="(breakdown)",
    )
    report.figure(
        f"  c{level} CPU / case",
        cpu.get(f"caseloop {level}", 0) / cases,
        cpu.get(f"bare {level}", 0) / cases,
        unit="ms",
        note=f"(breakdown) {_parts(by_process, f'caseloop {level}', cases)}"
        f" | bare: {_parts(by_process, f'bare {level}', cases)}",
    )
    for side in ("floor", "floor_http"):
        report.figure(
            f"  c{level} CPU / case, {side.replace('_', ' ')}",
            cpu.get(f"{side} {level}", 0) / cases,
            cpu.get(f"bare {level}", 0) / cases,
            unit="ms",
            note=f"(breakdown) {_parts(by_process, f'{side} {level}', cases)}",
        )


def _parts(by_process: dict[str, dict[str, float]], label: str, cases: int) -> str:
    """CPU milliseconds per case of each process under ``label``."""
    return " ".join(
        f"{name} {seconds * 1000 / cases:.0f}"
        for name, seconds in by_process.get(label, {}).items()
    )
