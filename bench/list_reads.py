"""Benchmark 1(c): list reads through HTTP on PostgreSQL, against raw SQL in the same run.

    PYTHONPATH=$PWD .venv/bin/python -m bench.list_reads [--iterations 200] [--scale 1.0]

Starts a throwaway PostgreSQL 15 (as ``.ci/run`` does), migrates it, seeds issue 10's read model
(``bench.seed_read_model``: 1,001 organisations, 200k cases, 1M tasks, one creditor with 120k
tasks), serves the API with uvicorn (``python -m api.server``) and measures every list request
below over HTTP, each followed at once by its raw-SQL baseline (the page and the bounded count a
hand-written client would run, on one psycopg connection), interleaved round after round. It
prints a table of medians, p99 and ratios, writes ``bench/results/list_reads.json`` and the
``EXPLAIN (ANALYZE, BUFFERS)`` of every statement the API runs for each request to
``bench/results/list_reads_plans.txt``.

``--database-url`` (with ``--seeded``, the JSON ``bench.seed_read_model`` prints) reuses a
seeded database instead of starting one; ``--app-path`` serves the API of another checkout
against this checkout's schema. ``--compare-app-path`` serves a second checkout's API next to
this one and measures both in the same rounds (a before/after on a shared, noisy machine), and
the table ends with each API process's CPU time per request. p99 is over ``--iterations``
samples per request (the third-slowest of 200); the client collects its garbage between rounds
only, so its own pauses do not count.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

from api.pagination import COUNT_LIMIT
from bench.seed_read_model import BENCH_KEYS, NOW, Seeded, seed
from store.cursor import encode_cursor

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"

PAGE = 10

# Acceptance (issue 10): p99 bounds per group of requests, in milliseconds.
BOUNDS = {"tasks": 25.0, "tasks-ops": 60.0, "cases": 25.0}


@dataclass(frozen=True)
class Scenario:
    name: str
    group: str  # which acceptance bound applies ("info": none)
    role: str  # the key it uses: creditor, partner, ops
    path: str
    raw_sql: str | None  # the page and the bounded count, as one round trip each
    raw_params: dict[str, Any]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL cluster, owned by postgres when we are root (as .ci/run)."""
    pg_bin = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
    folder = Path(tempfile.mkdtemp(prefix="caseloop-bench-pg."))
    port = _free_port()
    as_pg: list[str] = []
    if os.getuid() == 0:
        shutil.chown(folder, "postgres")
        as_pg = ["runuser", "-u", "postgres", "--"]

    def run(*args: str) -> None:
        subprocess.run([*as_pg, *args], check=True, stdout=subprocess.DEVNULL)

    run(
        str(pg_bin / "initdb"), "-D", f"{folder}/data", "-U", "caseloop", "-A", "trust", "--no-sync"
    )
    options = (
        f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c shared_buffers=256MB -c work_mem=16MB"
    )
    run(
        str(pg_bin / "pg_ctl"),
        "-D",
        f"{folder}/data",
        "-l",
        f"{folder}/log",
        "-w",
        "-o",
        options,
        "start",
    )
    try:
        run(str(pg_bin / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "caseloop", "bench")
        yield f"postgresql://caseloop@127.0.0.1:{port}/bench"
    finally:
        run(str(pg_bin / "pg_ctl"), "-D", f"{folder}/data", "-m", "fast", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def migrate(url: str, app_path: Path) -> None:
    code = f"from store.migrate import upgrade; upgrade({url!r})"
    subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        env={**os.environ, "PYTHONPATH": str(app_path)},
        cwd=app_path,
    )


@dataclass(frozen=True)
class Server:
    base: str
    pid: int


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def api_server(url: str, app_path: Path) -> Iterator[Server]:
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(app_path),
        "DATABASE_URL": url,
        "API_HOST": "127.0.0.1",
        "API_PORT": str(port),
        "PAYLOAD_ENCRYPTION": "false",
        "RATE_LIMIT_PER_MINUTE": "0",
        "TEMPORAL_ADDRESS": "127.0.0.1:1",  # never called by a list read
    }
    workdir = tempfile.mkdtemp(prefix="caseloop-bench-api.")  # no .env is read
    process = subprocess.Popen(
        [sys.executable, "-m", "api.server"],
        env=env,
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if (
                    httpx.get(
                        f"{base}/api/tasks", headers={"XApiKey": BENCH_KEYS["ops"]}
                    ).status_code
                    == 200
                ):
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None:
                raise RuntimeError(process.stderr.read().decode() if process.stderr else "api died")
            time.sleep(0.1)
        else:
            raise RuntimeError("the API did not answer")
        yield Server(base, process.pid)
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


def _has_column(db: psycopg.Connection[Any], table: str, column: str) -> bool:
    return bool(
        db.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_name=%s AND column_name=%s",
            (table, column),
        ).fetchone()
    )


TASK_PAGE = """
SELECT t.*, u.name, u.email FROM tasks t LEFT JOIN users u ON u.id = t.assignee_id
WHERE {where} ORDER BY t.sort_deadline, t.date_created, t.id LIMIT 11;
"""
TASK_COUNT = "SELECT count(*) FROM (SELECT 1 FROM tasks t WHERE {where} LIMIT {limit}) s;"
CASE_PAGE = "SELECT c.* FROM cases c WHERE {where} ORDER BY c.created_at DESC, c.id LIMIT 11;"
CASE_COUNT = "SELECT count(*) FROM (SELECT 1 FROM cases c WHERE {where} LIMIT {limit}) s;"


def _tasks_sql(where: str) -> str:
    return TASK_PAGE.format(where=where) + TASK_COUNT.format(where=where, limit=COUNT_LIMIT + 1)


def _cases_sql(where: str) -> str:
    return CASE_PAGE.format(where=where) + CASE_COUNT.format(where=where, limit=COUNT_LIMIT + 1)


def scenarios(db: psycopg.Connection[Any], seeded: Seeded) -> list[Scenario]:
    creditor = "t.owner_org_id = %(org)s AND t.access_level = 'Creditor' AND t.case_visible"
    partner = "t.owner_org_id = %(partner)s AND t.access_level = 'Partner' AND t.case_visible"
    p = {"org": seeded.big_creditor, "partner": seeded.big_partner}
    deep = db.execute(
        f"SELECT sort_deadline, date_created, id FROM tasks t WHERE {creditor} "
        "ORDER BY sort_deadline, date_created, id OFFSET 49999 LIMIT 1",
        p,
    ).fetchone()
    assert deep is not None
    task_cursor = encode_cursor("tasks", (deep[0].isoformat(), deep[1].isoformat(), deep[2]))
    deep_case = db.execute(
        "SELECT created_at, id FROM cases WHERE creditor_id = %(org)s "
        "ORDER BY created_at DESC, id OFFSET 19999 LIMIT 1",
        p,
    ).fetchone()
    assert deep_case is not None
    case_cursor = encode_cursor("cases", (deep_case[0].isoformat(), str(deep_case[1])))
    soon, later = NOW.isoformat(), (NOW + dt.timedelta(days=7)).isoformat()
    name = seeded.searched_name
    t = "/api/tasks?"
    c = "/api/cases?"
    like = "lower(c.debtor_name) LIKE %(name)s"
    partner_cases = (
        "(c.partner_id = %(partner)s OR c.id IN "
        "(SELECT case_id FROM case_invitations WHERE partner_id = %(partner)s))"
    )
    tp = {**p, "deep": deep[0], "deep_created": deep[1], "deep_id": deep[2]}
    cp = {**p, "name": f"%{name.lower()}%", "deep": deep_case[0], "deep_id": deep_case[1]}
    return [
        Scenario(
            "tasks: first page (120k creditor)", "tasks", "creditor", t, _tasks_sql(creditor), p
        ),
        Scenario(
            "tasks: status=Open",
            "tasks",
            "creditor",
            t + "status=Open",
            _tasks_sql(creditor + " AND t.status='Open'"),
            p,
        ),
        Scenario(
            "tasks: status=Solved",
            "tasks",
            "creditor",
            t + "status=Solved",
            _tasks_sql(creditor + " AND t.status='Solved'"),
            p,
        ),
        Scenario(
            "tasks: type=NewMessage",
            "tasks",
            "creditor",
            t + "type=NewMessage",
            _tasks_sql(creditor + " AND t.type='NewMessage'"),
            p,
        ),
        Scenario(
            "tasks: type=SelectQuoteWinner",
            "tasks",
            "creditor",
            t + "type=SelectQuoteWinner",
            _tasks_sql(creditor + " AND t.type='SelectQuoteWinner'"),
            p,
        ),
        Scenario(
            "tasks: assignee",
            "tasks",
            "creditor",
            t + f"assignee={seeded.creditor_user}",
            _tasks_sql(creditor + " AND t.assignee_id = %(user)s"),
            {**p, "user": seeded.creditor_user},
        ),
        Scenario(
            "tasks: overdue=true",
            "tasks",
            "creditor",
            t + "overdue=true",
            _tasks_sql(creditor + " AND t.overdue_since IS NOT NULL AND t.status='Open'"),
            p,
        ),
        Scenario(
            "tasks: overdue=false",
            "tasks",
            "creditor",
            t + "overdue=false",
            _tasks_sql(creditor + " AND t.overdue_since IS NULL"),
            p,
        ),
        Scenario(
            "tasks: deadline next 7 days",
            "tasks",
            "creditor",
            t + f"deadlineFrom={soon}&deadlineTo={later}".replace("+", "%2B"),
            _tasks_sql(creditor + " AND t.sort_deadline >= %(a)s AND t.sort_deadline <= %(b)s"),
            {**p, "a": NOW, "b": NOW + dt.timedelta(days=7)},
        ),
        Scenario(
            "tasks: caseId",
            "tasks",
            "creditor",
            t + f"caseId={seeded.big_case}",
            _tasks_sql(creditor + " AND t.case_id = %(case)s"),
            {**p, "case": seeded.big_case},
        ),
        Scenario(
            "tasks: cursor page at 50,000",
            "tasks",
            "creditor",
            t + f"after={task_cursor}",
            TASK_PAGE.format(
                where=creditor
                + " AND (t.sort_deadline, t.date_created, t.id) > (%(deep)s, %(deep_created)s, %(deep_id)s)"
            )
            + TASK_COUNT.format(where=creditor, limit=COUNT_LIMIT + 1),
            tp,
        ),
        Scenario("tasks: page=5000 (offset)", "info", "creditor", t + "page=5000", None, p),
        Scenario("tasks: partner first page", "tasks", "partner", t, _tasks_sql(partner), p),
        Scenario("tasks: ops first page (1M)", "tasks-ops", "ops", t, _tasks_sql("true"), p),
        Scenario(
            "tasks: ops status=Open",
            "tasks-ops",
            "ops",
            t + "status=Open",
            _tasks_sql("t.status='Open'"),
            p,
        ),
        Scenario(
            "cases: first page (24k creditor)",
            "cases",
            "creditor",
            c,
            _cases_sql("c.creditor_id = %(org)s"),
            p,
        ),
        Scenario(
            "cases: status=In Collection",
            "cases",
            "creditor",
            c + "status=In%20Collection",
            _cases_sql("c.creditor_id = %(org)s AND c.status = 'In Collection'"),
            p,
        ),
        Scenario(
            "cases: lifecycle=Paused",
            "cases",
            "creditor",
            c + "lifecycle=Paused",
            _cases_sql("c.creditor_id = %(org)s AND c.status = 'On Hold' AND c.sub_status IS NULL"),
            p,
        ),
        Scenario(
            f"cases: debtorName={name}",
            "cases",
            "creditor",
            c + f"debtorName={name}",
            _cases_sql(f"c.creditor_id = %(org)s AND {like}"),
            cp,
        ),
        Scenario(
            "cases: cursor page at 20,000",
            "cases",
            "creditor",
            c + f"after={case_cursor}",
            CASE_PAGE.format(
                where="c.creditor_id = %(org)s AND c.created_at <= %(deep)s AND (c.created_at < %(deep)s OR c.id > %(deep_id)s)"
            )
            + CASE_COUNT.format(where="c.creditor_id = %(org)s", limit=COUNT_LIMIT + 1),
            cp,
        ),
        Scenario("cases: page=2000 (offset)", "info", "creditor", c + "page=2000", None, p),
        Scenario("cases: partner view", "cases", "partner", c, _cases_sql(partner_cases), p),
        Scenario(
            f"cases: partner debtorName={name}",
            "cases",
            "partner",
            c + f"debtorName={name}",
            _cases_sql(f"{partner_cases} AND {like}"),
            cp,
        ),
        Scenario("cases: ops first page (200k)", "cases", "ops", c, _cases_sql("true"), p),
        Scenario(
            f"cases: ops debtorName={name}",
            "cases",
            "ops",
            c + f"debtorName={name}",
            _cases_sql(like),
            cp,
        ),
    ]


def _ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50": round(statistics.median(ordered) * 1000, 2),
        "p99": round(ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))] * 1000, 2),
    }


WARM_UP_ROUNDS = 5


def measure(
    servers: dict[str, Server], url: str, cases: list[Scenario], iterations: int, raw: bool
) -> dict[str, Any]:
    """Round after round, each request of ``cases`` once to every server (in turns, so no server
    always goes first), then each one's raw SQL. The first rounds warm up (caches, prepared
    statements). The client's garbage collector runs between rounds only, so its pauses are
    not counted as the server's time. Each server's CPU time per request is read from
    ``/proc`` over the measured rounds: the API's own work, whatever the machine's load."""
    clients = {label: httpx.Client(base_url=s.base, timeout=30) for label, s in servers.items()}
    labels = list(servers)
    db = psycopg.connect(url, autocommit=True)
    api_times: dict[str, dict[str, list[float]]] = {
        label: {s.name: [] for s in cases} for label in labels
    }
    raw_times: dict[str, list[float]] = {s.name: [] for s in cases}
    cpu_start: dict[str, float] = {}
    gc.disable()
    try:
        for round_number in range(iterations + WARM_UP_ROUNDS):
            measured = round_number >= WARM_UP_ROUNDS
            if round_number == WARM_UP_ROUNDS:
                cpu_start = {label: cpu_seconds(s.pid) for label, s in servers.items()}
            for index, scenario in enumerate(cases):
                shift = (round_number + index) % len(labels)
                for label in labels[shift:] + labels[:shift]:
                    started = time.perf_counter()
                    response = clients[label].get(
                        scenario.path, headers={"XApiKey": BENCH_KEYS[scenario.role]}
                    )
                    elapsed = time.perf_counter() - started
                    if response.status_code != 200:
                        raise RuntimeError(
                            f"{label} {scenario.name}: {response.status_code} {response.text[:300]}"
                        )
                    if measured:
                        api_times[label][scenario.name].append(elapsed)
            # The raw SQL of the round after all of its API requests: a naive baseline query
            # (the partner's OR scans every case) run just before an API request left that
            # request cold caches, and measured the baseline's cost as the API's.
            for scenario in cases:
                if raw and scenario.raw_sql:
                    started = time.perf_counter()
                    with db.cursor() as cursor:
                        for statement in filter(str.strip, scenario.raw_sql.split(";")):
                            cursor.execute(statement, scenario.raw_params, prepare=True)
                            cursor.fetchall()
                    if measured:
                        raw_times[scenario.name].append(time.perf_counter() - started)
            gc.collect()
    finally:
        gc.enable()
    requests = iterations * len(cases)
    cpu_ms = {
        label: round((cpu_seconds(s.pid) - cpu_start[label]) * 1000 / requests, 2)
        for label, s in servers.items()
    }
    main = labels[0]
    results: dict[str, Any] = {"_cpu_ms_per_request": cpu_ms}
    for scenario in cases:
        first = (
            clients[main].get(scenario.path, headers={"XApiKey": BENCH_KEYS[scenario.role]}).json()
        )
        entry: dict[str, Any] = {
            "path": scenario.path,
            "role": scenario.role,
            "group": scenario.group,
            "api_ms": _ms(api_times[main][scenario.name]),
            "page": first["page"],
        }
        for label in labels[1:]:
            entry[f"{label}_api_ms"] = _ms(api_times[label][scenario.name])
        if raw_times[scenario.name]:
            entry["raw_sql_ms"] = _ms(raw_times[scenario.name])
            entry["ratio_p50"] = round(entry["api_ms"]["p50"] / entry["raw_sql_ms"]["p50"], 2)
        bound = BOUNDS.get(scenario.group)
        if bound is not None:
            entry["bound_p99_ms"] = bound
            entry["within_bound"] = entry["api_ms"]["p99"] <= bound
        results[scenario.name] = entry
    for client in clients.values():
        client.close()
    db.close()
    return results


async def explain(url: str, cases: list[Scenario]) -> str:
    """EXPLAIN ANALYZE of every statement the API's store runs for each list request."""
    from fastapi.testclient import TestClient  # noqa: F401  (the app in-process, same code)
    from sqlalchemy import event

    from api.app import create_app
    from settings import Settings

    captured: list[tuple[str, Any]] = []
    settings = Settings(database_url=url, payload_encryption=False, rate_limit_per_minute=0)
    app = create_app(settings)
    out: list[str] = []
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app):
        engine = app.state.sessions.kw["bind"]

        def capture(
            conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
        ) -> None:
            if (
                statement.lstrip().upper().startswith(("SELECT", "WITH"))
                and "api_keys" not in statement
            ):
                captured.append((statement, parameters))

        event.listen(engine.sync_engine, "before_cursor_execute", capture)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for scenario in cases:
                captured.clear()
                response = await client.get(
                    scenario.path, headers={"XApiKey": BENCH_KEYS[scenario.role]}
                )
                assert response.status_code == 200, response.text
                statements = list(captured)
                out.append(f"=== {scenario.name}  GET {scenario.path}")
                async with engine.connect() as connection:
                    for statement, parameters in statements:
                        result = await connection.exec_driver_sql(
                            "EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters
                        )
                        out.append("\n".join(row[0] for row in result))
                        out.append("")
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    return "\n".join(out)


def table(results: dict[str, Any]) -> str:
    compared = [
        key[: -len("_api_ms")]
        for key in next(e for n, e in results.items() if not n.startswith("_"))
        if key.endswith("_api_ms")
    ]
    header = f"{'request':44} {'API p50':>8} {'API p99':>8}"
    for label in compared:
        header += f" {label[:7] + ' p50':>12} {label[:7] + ' p99':>12}"
    lines = [header + f" {'SQL p50':>8} {'SQL p99':>8} {'ratio':>6}  bound"]
    for name, entry in results.items():
        if name.startswith("_"):
            continue
        raw = entry.get("raw_sql_ms", {})
        bound = entry.get("bound_p99_ms")
        verdict = (
            ""
            if bound is None
            else f"p99 ≤ {bound:.0f}: {'yes' if entry['within_bound'] else 'NO'}"
        )
        line = f"{name:44} {entry['api_ms']['p50']:8.2f} {entry['api_ms']['p99']:8.2f}"
        for label in compared:
            other = entry[f"{label}_api_ms"]
            line += f" {other['p50']:12.2f} {other['p99']:12.2f}"
        lines.append(
            line + f" {raw.get('p50', float('nan')):8.2f} {raw.get('p99', float('nan')):8.2f} "
            f"{entry.get('ratio_p50', float('nan')):6.2f}  {verdict}"
        )
    cpu = results["_cpu_ms_per_request"]
    lines.append(
        "API process CPU per request (ms, measured rounds): "
        + ", ".join(f"{label} {value:.2f}" for label, value in cpu.items())
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description="List reads through HTTP on PostgreSQL (issue 10, 1c)"
    )
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--database-url", help="a seeded database to reuse (skips start and seed)")
    parser.add_argument("--seeded", help="with --database-url: the Seeded JSON the seed printed")
    parser.add_argument(
        "--app-path", type=Path, default=ROOT, help="the checkout whose API to serve"
    )
    parser.add_argument("--label", default="after")
    parser.add_argument(
        "--compare-app-path",
        type=Path,
        help="also serve another checkout's API (e.g. the commit before a change) against the "
        "same database and measure it interleaved with this one (same rounds, same load)",
    )
    parser.add_argument(
        "--compare-label", default="before", help="the name of --compare-app-path in the table"
    )
    parser.add_argument(
        "--skip-offset",
        action="store_true",
        help="leave out the informational deep page=N requests (about 1 s each)",
    )
    args = parser.parse_args()

    def run(url: str, seeded: Seeded) -> None:
        with psycopg.connect(url) as db:
            new_schema = _has_column(db, "tasks", "sort_deadline")
            cases = scenarios(db, seeded) if new_schema else []
        if not new_schema:
            raise SystemExit("the database lacks issue 10's schema: seed it with this checkout")
        if args.skip_offset:
            cases = [case for case in cases if case.group != "info"]
        with ExitStack() as stack:
            servers = {args.label: stack.enter_context(api_server(url, args.app_path))}
            if args.compare_app_path is not None:
                servers[args.compare_label] = stack.enter_context(
                    api_server(url, args.compare_app_path)
                )
            results = measure(servers, url, cases, args.iterations, raw=True)
        RESULTS.mkdir(parents=True, exist_ok=True)
        document = {
            "benchmark": "list reads (issue 10, 1c)",
            "label": args.label,
            "app_path": str(args.app_path),
            "iterations": args.iterations,
            "scale": args.scale,
            "when": dt.datetime.now(dt.UTC).isoformat(),
            "results": results,
        }
        (RESULTS / f"list_reads_{args.label}.json").write_text(
            json.dumps(document, indent=2, default=str)
        )
        print(table(results))
        if args.app_path.resolve() == ROOT:
            plans = asyncio.run(explain(url, cases))
            (RESULTS / f"list_reads_plans_{args.label}.txt").write_text(plans)
            print(f"plans: {RESULTS / f'list_reads_plans_{args.label}.txt'}")

    if args.database_url:
        given = json.loads(args.seeded)
        seeded = Seeded(
            searched_name=given.pop("searched_name"),
            **{key: uuid.UUID(value) for key, value in given.items()},
        )
        run(args.database_url, seeded)
        return
    with postgres() as url:
        migrate(url, ROOT)
        seeded = seed(url, scale=args.scale)
        run(url, seeded)


if __name__ == "__main__":
    main()
