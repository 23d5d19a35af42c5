"""Scaling out (docs/scaling.md): two workers and two API processes, one dev server, one database.

Real OS processes, as production runs them: ``python -m worker`` twice and ``python -m api.server``
twice, all on one task queue of one Temporal dev server and one read-model database (SQLite in
WAL mode here; PostgreSQL when CI re-runs the ``db`` tests). A careful client spreads its requests
over both APIs like a load balancer would (a retry may land on the other one), sends some writes
with the same Idempotency-Key to both APIs at the same moment, and one worker is SIGKILLed while
writes are in flight and started again. Afterwards every case's read model and workflow agree
with the client's 2xx answers: each action's effect exists exactly once and none is lost.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from domain.enums import OrgKind
from domain.ids import case_workflow_id
from settings import Settings
from store.models import Case
from tests.api.test_tasks import bank_account, sign
from tests.integration.test_worker_kill_drill import (
    STEPS_PER_CASE,
    WRITES,
    DrivenCase,
    WorkerProcess,
    accepted,
    compare,
    documented_4xx_codes,
    drive,
    keyed,
    process_env,
    remove_cleanup_schedule,
)
from tests.support import Actor, CarefulTransport, make_actor

CASES = 10
PARALLEL_CASES = 5
UPDATE_TIMEOUT_SECONDS = 5.0
GIVE_UP_AFTER_SECONDS = 60.0
LOAD_LIMIT_SECONDS = 90.0
KILL_AFTER_WRITES = 25  # SIGKILL worker 0 once this many writes were answered 2xx
WORKER_DOWN_SECONDS = 2.0
# Header naming the API (0 or 1) a request must go to; without it, requests alternate.
TO_API = "X-Test-To-Api"


class ApiProcess:
    """``python -m api.server`` as its own OS process on a port of its own."""

    def __init__(self, env: dict[str, str], cwd: Path, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = cwd / "api.log"
        cwd.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "api.server"],
                env={**env, "API_HOST": "127.0.0.1", "API_PORT": str(port)},
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def healthy(self, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        async with httpx.AsyncClient(base_url=self.url, timeout=2) as client:
            while time.monotonic() < deadline:
                assert self.process.poll() is None, f"the API exited:\n{self.log()}"
                try:
                    if (await client.get("/api/health")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError(f"the API was not healthy within {seconds}s:\n{self.log()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self, tail: int = 6000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:] if self.log_path.exists() else ""


@dataclass
class Balancer(httpx.AsyncBaseTransport):
    """Sends each request to one of the APIs: the one its ``X-Test-To-Api`` header names, else
    the next in turn (so a retry may reach the other API). Counts the requests each API got."""

    urls: list[httpx.URL]
    inner: httpx.AsyncBaseTransport = field(default_factory=httpx.AsyncHTTPTransport)
    served: Counter[int] = field(default_factory=Counter)
    _turn: itertools.count[int] = field(default_factory=itertools.count)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        pinned = request.headers.get(TO_API)
        index = int(pinned) if pinned is not None else next(self._turn) % len(self.urls)
        target = self.urls[index]
        request.url = request.url.copy_with(host=target.host, port=target.port)
        request.headers["Host"] = f"{target.host}:{target.port}"
        self.served[index] += 1
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Processes:
    workers: list[WorkerProcess]
    apis: list[ApiProcess]

    def logs(self) -> str:
        parts = [f"--- worker {i}\n{w.log()}" for i, w in enumerate(self.workers)]
        parts += [f"--- api {i}\n{a.log()}" for i, a in enumerate(self.apis)]
        return "\n".join(parts)


@pytest.fixture
async def processes(
    dev_env: WorkflowEnvironment, settings: Settings, tmp_path: Path
) -> AsyncIterator[Processes]:
    """Two workers and two APIs on this test's task queue and database."""
    env = process_env(dev_env, settings, tmp_path / "var")
    env.update(
        RATE_LIMIT_PER_MINUTE="0",  # each API has its own buckets; the load is one client's
        API_UPDATE_TIMEOUT_SECONDS=str(UPDATE_TIMEOUT_SECONDS),
        BLOB_DIR=str(tmp_path / "blobs"),  # one blob store for both APIs
    )
    workers = []
    for n in range(2):
        (tmp_path / f"worker{n}").mkdir()
        workers.append(WorkerProcess(env, tmp_path / f"worker{n}"))
    apis: list[ApiProcess] = []
    try:
        for worker in workers:
            worker.start()
        apis = [ApiProcess(env, tmp_path / f"api{n}", _free_port()) for n in range(2)]
        for worker in workers:
            await worker.polling()
        for api in apis:
            await api.healthy()
        yield Processes(workers, apis)
    finally:
        for api in apis:
            api.stop()
        for worker in workers:
            worker.stop()
        await remove_cleanup_schedule(dev_env, settings.temporal_task_queue)


async def both_at_once(
    client: httpx.AsyncClient, path: str, actor: Actor, body: dict[str, object]
) -> list[httpx.Response]:
    """The same write, with one new Idempotency-Key, sent to API 0 and API 1 at the same time."""
    key = f"both-{uuid.uuid4()}"

    async def to(api: int) -> httpx.Response:
        headers = {**actor.headers, "Idempotency-Key": key, TO_API: str(api)}
        return await client.post(path, json=body, headers=headers)

    return list(await asyncio.gather(to(0), to(1)))


async def test_two_workers_and_two_apis_apply_every_action_exactly_once(
    dev_env: WorkflowEnvironment,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    processes: Processes,
) -> None:
    creditors = [await make_actor(sessions, OrgKind.CREDITOR) for _ in range(2)]
    partners = [await make_actor(sessions, OrgKind.PARTNER) for _ in range(2)]
    ops = await make_actor(sessions, OrgKind.OPS)
    balancer = Balancer([httpx.URL(api.url) for api in processes.apis])
    transport = CarefulTransport(balancer, give_up_after=GIVE_UP_AFTER_SECONDS)
    cases = [
        DrivenCase(
            number=n,
            creditor=creditors[n % 2],
            partner=partners[n % 2],
            reference=f"SCALE-{n}-{uuid.uuid4().hex[:6]}",
        )
        for n in range(CASES)
    ]
    both: list[list[httpx.Response]] = []
    killed_with_writes_in_flight: list[int] = []

    async def one(case: DrivenCase, slots: asyncio.Semaphore, banks: dict[uuid.UUID, str]) -> None:
        async with slots:
            await drive(client, case, ops, banks[case.creditor.org_id])
            cid = case.case_id
            # The same chat message and the same payment, sent to both APIs at once.
            answers = await both_at_once(
                client, f"/api/cases/{cid}/chats", case.partner, {"message": "sent to both"}
            )
            both.append(answers)
            message_id = accepted(answers[0], 201, case, "chat to both")["id"]
            case.message_ids.append(message_id)
            keyed(answers[0], case, case.partner, message_id)
            today = dt.datetime.now(ZoneInfo(case.partner.principal.timezone)).date().isoformat()
            answers = await both_at_once(
                client,
                f"/api/cases/{cid}/payments",
                case.partner,
                {"amount": "50.00", "paidOn": today, "paidTo": "Creditor"},
            )
            both.append(answers)
            payment_id = accepted(answers[0], 201, case, "payment to both")["id"]
            case.payment_ids.append(payment_id)
            keyed(answers[0], case, case.partner, payment_id)

    def writes_done() -> int:
        return sum(1 for a in transport.answers if a.method in WRITES and 200 <= a.status < 300)

    async def kill_one_worker(load: list[asyncio.Task[None]]) -> None:
        while not (writes_done() >= KILL_AFTER_WRITES and transport.writes_in_flight > 0):
            if all(task.done() for task in load):
                return  # too few writes: the assertions below say so
            await asyncio.sleep(0.01)
        killed_with_writes_in_flight.append(transport.writes_in_flight)
        processes.workers[0].kill()
        await asyncio.sleep(WORKER_DOWN_SECONDS)
        processes.workers[0].start()
        await processes.workers[0].polling()

    async with httpx.AsyncClient(
        transport=transport, base_url=processes.apis[0].url, timeout=GIVE_UP_AFTER_SECONDS
    ) as client:
        banks = {}
        for creditor in creditors:
            await sign(client, creditor)
            banks[creditor.org_id] = await bank_account(client, creditor)
        slots = asyncio.Semaphore(PARALLEL_CASES)
        try:
            async with asyncio.timeout(LOAD_LIMIT_SECONDS), asyncio.TaskGroup() as group:
                load = [group.create_task(one(case, slots, banks)) for case in cases]
                group.create_task(kill_one_worker(load))
        except BaseException:
            print(processes.logs())
            raise

    # The run went as planned: both APIs served, a worker died with writes in flight, and
    # every case took every step.
    assert min(balancer.served.values()) > CASES * STEPS_PER_CASE / 2, balancer.served
    assert killed_with_writes_in_flight and killed_with_writes_in_flight[0] > 0
    assert all(c.steps_done == STEPS_PER_CASE + 2 for c in cases)

    # Both APIs answered the same write with the same resource, and it exists once.
    for first, second in both:
        assert first.status_code == second.status_code == 201, (first.text, second.text)
        assert first.json()["id"] == second.json()["id"]

    # Each accepted write is in the read model and the workflow exactly once, and they agree.
    problems: list[str] = []
    for case in cases:
        problems += await compare(dev_env, sessions, case)
    async with sessions() as session:
        case_rows = await session.scalar(
            select(func.count())
            .select_from(Case)
            .where(Case.creditor_id.in_([c.org_id for c in creditors]))
        )
    if case_rows != CASES:
        problems.append(f"{case_rows} cases in the read model, {CASES} created")
    assert not problems, "\n".join(problems)

    # Every answer was a success, a documented 4xx, or a 503 the client may retry.
    documented = documented_4xx_codes()
    odd = [
        a
        for a in transport.answers
        if not (
            200 <= a.status < 300
            or (400 <= a.status < 500 and a.code in documented)
            or (a.status == 503 and a.retry_after is not None)
        )
    ]
    assert not odd, odd

    # Both workers ran the cases' workflow tasks (three identities: one worker was restarted).
    identities: set[str] = set()
    for case in cases:
        handle = dev_env.client.get_workflow_handle(case_workflow_id(uuid.UUID(case.case_id)))
        async for event in handle.fetch_history_events():
            if event.HasField("workflow_task_completed_event_attributes"):
                identities.add(event.workflow_task_completed_event_attributes.identity)
    assert len(identities) >= 2, identities
