"""The fault drill (issue 9): a load of cases through the API while the worker is SIGKILLed.

A real dev server, the API in this process (as a careful client calls it: an Idempotency-Key on
every write, 503s retried with the same key) and the worker as a separate OS process, killed with
SIGKILL twice while requests are in flight and started again. Afterwards, for every case, each
write the client got a 2xx for is in the read model and in the workflow exactly once, and the read
model equals the workflow's state; every answer was a 2xx, a documented 4xx or a 503 with
Retry-After, and came within API_UPDATE_TIMEOUT_SECONDS + 2 s.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import ScheduleActionStartWorkflow
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from domain.cases import CaseDetails, CaseState
from domain.enums import OrgKind
from domain.ids import case_workflow_id
from domain.tasks import task_id
from domain.update_ids import client_update_id, digest
from schedules import CHAT_CLEANUP
from settings import Settings
from store.models import Case, CaseHistory, ChatMessageRow, TaskRow
from tests.api.test_chat import post_chat
from tests.api.test_status import move, pay
from tests.api.test_tasks import assign, bank_account, sign
from tests.support import Actor, Answer, CarefulTransport, case_body, make_actor
from workflows.case import CaseWorkflow

ROOT = Path(__file__).resolve().parents[2]

# The settings value the drill runs with; the latency bound is derived from it.
UPDATE_TIMEOUT_SECONDS = 5.0
LATENCY_BOUND_SECONDS = UPDATE_TIMEOUT_SECONDS + 2

CASES = 30
PARALLEL_CASES = 10
CREDITORS = PARTNERS = 3
# SIGKILL the worker once this many writes have been answered 2xx (with writes in flight), keep
# it down for WORKER_DOWN_SECONDS so requests meet a dead worker, then start it again.
KILL_AFTER_WRITES = (50, 130)
WORKER_DOWN_SECONDS = 3.0
# A careful client gives up on one request after this long (retrying its 503s meanwhile).
GIVE_UP_AFTER_SECONDS = 90.0
LOAD_LIMIT_SECONDS = 150.0
WRITES = frozenset({"POST", "PUT", "PATCH"})


def documented_4xx_codes() -> set[str]:
    """The 4xx problem codes docs/api.md lists ("Codes raised today")."""
    text = (ROOT / "docs" / "api.md").read_text()
    return set(re.findall(r"^\| `([a-z_]+)` \| 4\d\d \|", text, flags=re.MULTILINE))


class WorkerProcess:
    """``python -m worker`` as its own OS process, so the drill can SIGKILL it."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env = env
        self.cwd = cwd
        self.log_path = cwd / "worker.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "worker"],
                env=self.env,
                cwd=self.cwd,  # no stray .env: the settings come from env alone
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def polling(self, seconds: float = 60) -> None:
        """Wait until the process started last says it polls its task queue."""
        assert self.process is not None
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"the worker exited:\n{self.log()}"
            with self.log_path.open("rb") as log:
                log.seek(self._log_offset)
                if b"worker polling task queue" in log.read():
                    return
            await asyncio.sleep(0.1)
        raise AssertionError(f"the worker did not poll within {seconds}s:\n{self.log()}")

    def kill(self) -> None:
        assert self.process is not None and self.process.poll() is None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log(self, tail: int = 6000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:] if self.log_path.exists() else ""


@dataclass
class DrivenCase:
    """What the client was told about one case (from its 2xx answers)."""

    number: int
    creditor: Actor
    partner: Actor
    reference: str
    case_id: str = ""
    message_ids: list[str] = field(default_factory=list)
    payment_ids: list[str] = field(default_factory=list)
    status_note: str = ""
    # The update id of each accepted case update (not the creation): its Idempotency-Key scoped
    # to the caller's organisation -> the id it created.
    update_keys: dict[str, str | None] = field(default_factory=dict)
    steps_done: int = 0


@dataclass(frozen=True)
class Kill:
    at: float
    writes_in_flight: int
    writes_done: int


def accepted(response: httpx.Response, status: int, case: DrivenCase, step: str) -> Any:
    assert response.status_code == status, (
        f"case {case.number} ({case.case_id or 'new'}), step {step!r}: "
        f"{response.status_code} {response.text}"
    )
    case.steps_done += 1
    return response.json() if response.content else None


def keyed(
    response: httpx.Response, case: DrivenCase, by: Actor, result_id: str | None = None
) -> None:
    key = response.request.headers["Idempotency-Key"]
    case.update_keys[client_update_id(by.org_id, key)] = result_id


async def until(
    probe: Callable[[], Awaitable[bool]], *, seconds: float, what: str, pause: float = 0.2
) -> None:
    deadline = time.monotonic() + seconds
    while not await probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds}s")
        await asyncio.sleep(pause)


async def drive(client: httpx.AsyncClient, case: DrivenCase, ops: Actor, bank_id: str) -> None:
    """One case through intake, assignment, chat both ways, a status change and a payment."""
    creditor, partner = case.creditor, case.partner
    body = case_body(creditorReference=case.reference, bankAccountId=bank_id)
    created = accepted(
        await client.post("/api/cases", json=body, headers=creditor.headers), 201, case, "create"
    )
    case.case_id = cid = created["caseId"]

    async def validated() -> bool:
        got = await client.get(f"/api/cases/{cid}", headers=creditor.headers)
        assert got.status_code == 200, got.text
        return bool(got.json()["status"] == "Validated")

    await until(validated, seconds=GIVE_UP_AFTER_SECONDS, what=f"case {cid} Validated")

    response = await assign(client, ops, cid, partner)
    accepted(response, 200, case, "assign")
    keyed(response, case, ops)
    response = await client.post(f"/api/cases/{cid}/accept", headers=partner.headers)
    assert accepted(response, 200, case, "accept")["status"] == "In Collection"
    keyed(response, case, partner)
    for actor, text in ((creditor, "any news from the debtor?"), (partner, "the debtor called")):
        response = await post_chat(client, actor, cid, f"Case {case.number}: {text}")
        message_id = accepted(response, 201, case, "chat")["id"]
        case.message_ids.append(message_id)
        keyed(response, case, actor, message_id)
    case.status_note = f"drill {case.number}: plan agreed"
    response = await move(
        client, partner, cid, status="Payment Plan", subStatus="Plan active", note=case.status_note
    )
    assert accepted(response, 200, case, "status")["subStatus"] == "Plan active"
    keyed(response, case, partner)
    response = await pay(client, partner, cid, "100.00", note=f"drill {case.number}")
    payment_id = accepted(response, 201, case, "payment")["id"]
    case.payment_ids.append(payment_id)
    keyed(response, case, partner, payment_id)


STEPS_PER_CASE = 7  # the writes in drive()


def process_env(dev_env: WorkflowEnvironment, settings: Settings, var_dir: Path) -> dict[str, str]:
    """The environment of a caseloop process (``python -m worker``, ``python -m api.server``)
    on the test's dev server, task queue, database and payload key: nothing from this machine's
    own TEMPORAL_*, DATABASE_* or PAYLOAD_* variables."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TEMPORAL_", "DATABASE_", "PAYLOAD_"))
    }
    assert settings.payload_keys is not None
    env.update(
        PAYLOAD_KEYS=settings.payload_keys.get_secret_value(),
        TEMPORAL_ADDRESS=dev_env.client.service_client.config.target_host,
        TEMPORAL_NAMESPACE=dev_env.client.namespace,
        TEMPORAL_TASK_QUEUE=settings.temporal_task_queue,
        DATABASE_URL=settings.database_url,
        VAR_DIR=str(var_dir),
        # No metrics ports (observability/): fixed ports would clash with other test runs.
        API_METRICS_PORT="0",
        WORKER_METRICS_PORT="0",
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p),
    )
    return env


async def remove_cleanup_schedule(dev_env: WorkflowEnvironment, task_queue: str) -> None:
    """Delete the nightly cleanup schedule a worker process created for ``task_queue`` on the
    shared dev server, leaving the server as other tests expect it."""
    handle = dev_env.client.get_schedule_handle(CHAT_CLEANUP)
    try:
        action = (await handle.describe()).schedule.action
        if isinstance(action, ScheduleActionStartWorkflow) and action.task_queue == task_queue:
            await handle.delete()
    except RPCError:
        pass


@pytest.fixture
async def drill_worker(
    dev_env: WorkflowEnvironment, settings: Settings, tmp_path: Path
) -> AsyncIterator[WorkerProcess]:
    """The worker process on this test's task queue; stopped and its schedule removed after."""
    worker = WorkerProcess(process_env(dev_env, settings, tmp_path / "var"), tmp_path)
    worker.start()
    try:
        await worker.polling()
        yield worker
    finally:
        worker.stop()
        await remove_cleanup_schedule(dev_env, settings.temporal_task_queue)


async def test_sigkilled_worker_loses_and_duplicates_no_accepted_write(
    dev_env: WorkflowEnvironment,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    drill_worker: WorkerProcess,
    tmp_path: Path,
) -> None:
    drill_settings = settings.model_copy(
        update={"api_update_timeout_seconds": UPDATE_TIMEOUT_SECONDS}
    )
    creditors = [await make_actor(sessions, OrgKind.CREDITOR) for _ in range(CREDITORS)]
    partners = [await make_actor(sessions, OrgKind.PARTNER) for _ in range(PARTNERS)]
    ops = await make_actor(sessions, OrgKind.OPS)
    app = create_app(drill_settings, temporal=dev_env.client)
    transport = CarefulTransport(httpx.ASGITransport(app=app), give_up_after=GIVE_UP_AFTER_SECONDS)
    cases = [
        DrivenCase(
            number=n,
            creditor=creditors[n % CREDITORS],
            partner=partners[n % PARTNERS],
            reference=f"DRILL-{n}-{uuid.uuid4().hex[:6]}",
        )
        for n in range(CASES)
    ]
    kills: list[Kill] = []
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://caseloop.test") as client,
    ):
        banks = {}
        for creditor in creditors:
            await sign(client, creditor)
            banks[creditor.org_id] = await bank_account(client, creditor)
        setup_answers = len(transport.answers)

        def writes_done() -> int:
            return sum(
                1
                for a in transport.answers[setup_answers:]
                if a.method in WRITES and 200 <= a.status < 300
            )

        slots = asyncio.Semaphore(PARALLEL_CASES)

        async def one(case: DrivenCase) -> None:
            async with slots:
                await drive(client, case, ops, banks[case.creditor.org_id])

        async def kill_twice(load: list[asyncio.Task[None]]) -> None:
            for threshold in KILL_AFTER_WRITES:
                while not (writes_done() >= threshold and transport.writes_in_flight > 0):
                    if all(task.done() for task in load):
                        return  # too few writes: the assertions below say so
                    await asyncio.sleep(0.01)
                kills.append(Kill(time.monotonic(), transport.writes_in_flight, writes_done()))
                drill_worker.kill()
                await asyncio.sleep(WORKER_DOWN_SECONDS)
                drill_worker.start()
                await drill_worker.polling()

        started = time.monotonic()
        try:
            # One failing case cancels the others (and the killer), so the drill stops at once.
            async with asyncio.timeout(LOAD_LIMIT_SECONDS), asyncio.TaskGroup() as group:
                load = [group.create_task(one(case)) for case in cases]
                group.create_task(kill_twice(load))
        except BaseException:
            print(drill_worker.log())
            raise
        load_seconds = time.monotonic() - started

    answers = transport.answers  # the setup's too
    summary = summarise(answers, kills, load_seconds)
    print(f"fault drill: {json.dumps(summary)}")
    # Every answer, for a closer look: its request, status, code and latency.
    (tmp_path / "drill-answers.json").write_text(json.dumps([asdict(a) for a in answers], indent=1))

    # The drill happened as planned: two kills, each while writes were waiting for their answer,
    # with work accepted after the last restart.
    assert len(kills) == len(KILL_AFTER_WRITES), summary
    assert all(k.writes_in_flight > 0 for k in kills), kills
    assert any(a.started > kills[-1].at and 200 <= a.status < 300 for a in answers), summary
    assert all(c.steps_done == STEPS_PER_CASE for c in cases)

    # Each accepted write is in the read model and the workflow exactly once, and the read model
    # equals the workflow's state.
    problems: list[str] = []
    for case in cases:
        problems += await compare(dev_env, sessions, case)
    async with sessions() as session:
        case_rows = await session.scalar(select(func.count()).select_from(Case))
    if case_rows != CASES:
        problems.append(f"{case_rows} cases in the read model, {CASES} created")
    assert not problems, "\n".join(problems)

    # Every answer is a success, a documented 4xx, or a 503 the client may retry.
    documented = documented_4xx_codes()
    assert {"invalid_transition", "idempotency_in_progress"} <= documented, (
        "docs/api.md's table moved"
    )
    odd = [
        a
        for a in answers
        if not (
            200 <= a.status < 300
            or (400 <= a.status < 500 and a.code in documented)
            or (a.status == 503 and a.retry_after is not None)
        )
    ]
    assert not odd, (odd, summary)

    # LATENCY BOUND (issue 9: "with the worker killed, a request answers within
    # API_UPDATE_TIMEOUT_SECONDS + 2 s"). It holds once the API bounds the whole request, not
    # each Temporal RPC: the SDK may make several RPCs for one update (it sends it again while
    # the server has only admitted it, then polls for the result), each with the full timeout,
    # so without that bound a 503 can come after 2 x API_UPDATE_TIMEOUT_SECONDS or later.
    slow = [a for a in answers if a.seconds > LATENCY_BOUND_SECONDS]
    assert not slow, (
        f"{len(slow)} answers took longer than {LATENCY_BOUND_SECONDS}s "
        f"(API_UPDATE_TIMEOUT_SECONDS={UPDATE_TIMEOUT_SECONDS}): "
        + ", ".join(f"{a.method} {a.path} {a.status} {a.seconds:.1f}s" for a in slow[:20])
        + f"\n{json.dumps(summary)}"
    )


def summarise(answers: list[Answer], kills: list[Kill], load_seconds: float) -> dict[str, Any]:
    """Counts and latencies (seconds) of the drill's answers, for the log and failure messages."""

    def latency(of: list[Answer]) -> dict[str, float]:
        if not of:
            return {}
        seconds = sorted(a.seconds for a in of)
        return {
            "median": round(statistics.median(seconds), 3),
            "p95": round(seconds[int(len(seconds) * 0.95)], 3),
            "max": round(seconds[-1], 3),
        }

    writes = [a for a in answers if a.method in WRITES]
    return {
        "answers": len(answers),
        "writes": len(writes),
        "statuses": dict(Counter(f"{a.status} {a.code or ''}".strip() for a in answers)),
        "latency": latency(answers),
        "write_latency": latency(writes),
        "2xx_write_latency": latency([a for a in writes if a.status < 300]),
        "503_latency": latency([a for a in answers if a.status == 503]),
        "kills": [
            {"writes_in_flight": k.writes_in_flight, "writes_done": k.writes_done} for k in kills
        ],
        "load_seconds": round(load_seconds, 1),
    }


async def compare(
    dev_env: WorkflowEnvironment, sessions: async_sessionmaker[AsyncSession], case: DrivenCase
) -> list[str]:
    """How the read model and the workflow differ from each other and from the client's 2xx
    answers for ``case`` (empty: they agree), once the workflow has projected everything."""
    workflow_id = case_workflow_id(uuid.UUID(case.case_id))
    handle = dev_env.client.get_workflow_handle(workflow_id)
    state: CaseState | None = None
    row: Case | None = None

    async def settled() -> bool:
        nonlocal state, row
        state = await handle.query(CaseWorkflow.get_state)
        async with sessions() as session:
            row = await session.get(Case, uuid.UUID(case.case_id))
        return (
            state.projected_version == state.version
            and not state.book.dirty
            and row is not None
            and row.version == state.version
        )

    await until(settled, seconds=60, what=f"case {case.case_id} projected")
    assert state is not None and row is not None
    record = state.record
    async with sessions() as session:
        messages = list(
            await session.scalars(
                select(ChatMessageRow)
                .where(ChatMessageRow.case_id == row.id)
                .order_by(ChatMessageRow.seq)
            )
        )
        history = list(
            await session.scalars(
                select(CaseHistory).where(CaseHistory.case_id == row.id).order_by(CaseHistory.seq)
            )
        )
        tasks = {
            t.id: t for t in await session.scalars(select(TaskRow).where(TaskRow.case_id == row.id))
        }
        same_reference = await session.scalar(
            select(func.count())
            .select_from(Case)
            .where(
                Case.creditor_id == case.creditor.org_id, Case.creditor_reference == case.reference
            )
        )

    problems: list[str] = []

    def expect(what: str, got: object, wanted: object) -> None:
        if got != wanted:
            problems.append(f"case {case.number} {case.case_id}: {what}: {got!r} != {wanted!r}")

    # The case: once in the read model, as the workflow has it.
    expect("cases with its reference", same_reference, 1)
    expect("read model version", row.version, state.version)
    expect(
        "status",
        (row.status, row.sub_status),
        (record.status.value, record.sub_status.value if record.sub_status else None),
    )
    expect("partner", row.partner_id, record.partner_id)
    expect("details", row.details, CaseDetails.of(record).model_dump(mode="json"))
    # Each accepted case update applied once by the workflow (its update id is the request's
    # Idempotency-Key, scoped to the caller's organisation, remembered as a digest), answering
    # with what it created.
    applied = Counter(u.id for u in state.applied_updates)
    results = {u.id: u.result_id for u in state.applied_updates}
    for update_id, result_id in case.update_keys.items():
        expect(f"update {update_id} applied", applied[digest(update_id)], 1)
        if result_id is not None:
            expect(f"update {update_id} result", results.get(digest(update_id)), result_id)
    # Payments: exactly the one the client was told about, in both.
    expect("workflow payments", [p.id for p in record.payments], case.payment_ids)
    expect("read-model payments", [p["id"] for p in row.details["payments"]], case.payment_ids)
    # Messages: the workflow numbered exactly the client's messages; the read model has each once.
    expect("workflow messages", state.message_seq, len(case.message_ids))
    numbered = [task_id(workflow_id, f"message#{n}") for n in range(1, state.message_seq + 1)]
    expect("message ids", case.message_ids, numbered)
    expect("read-model messages", [m.id for m in messages], case.message_ids)
    expect("unprojected messages", state.pending_messages, [])
    # History: every entry the workflow counted, once; the client's status change among them once.
    expect("history", [h.seq for h in history], list(range(1, state.history_seq + 1)))
    expect("unprojected history", state.pending_history, [])
    expect(
        "the status change in history",
        [(h.status, h.sub_status) for h in history if h.note == case.status_note],
        [("Payment Plan", "Plan active")],
    )
    # Tasks: the read model's open tasks are the workflow's, each as the workflow last changed it.
    expect(
        "open tasks",
        sorted(t.id for t in tasks.values() if t.status == "Open"),
        sorted(t.id for t in state.book.tasks if t.status.value == "Open"),
    )
    for task in state.book.tasks:
        stored = tasks.get(task.id)
        if stored is None:
            problems.append(
                f"case {case.number}: task {task.id} ({task.type.value}) not in the read model"
            )
            continue
        expect(
            f"task {task.type.value}",
            (stored.version, stored.status, stored.deadline, stored.owner_org_id),
            (task.version, task.status.value, task.deadline, task.owner_org_id),
        )
    return problems
