"""Projection activities: copy workflow state into the read model, idempotently.

Each write carries the workflow's version number and every row has a deterministic key (task,
message and event ids, history entries by (case, seq)), so a retried or replayed activity never
duplicates anything, and a row never moves back to an older version.

The writes are plain statements, one per table and projection (an upsert of all its rows, the
version check in its ``WHERE``), not the ORM's unit of work: the activity is given every value,
so it reads nothing back but what decides whether more work is needed (the case row's
partner, reference and quotes, before a record replaces them).

A write of the *same* version replaces what is there. Projections are local activities run
inside the workflow task that accepts an update (docs/decisions/0009). When that task is lost
(its worker killed after the write committed, before the task completed), nothing of it is in
history: the update is applied again in a new task, with a new ``workflow.now()``, and its
projection carries the same version and keys with the values history now holds. The earlier
attempt's rows must give way to them, or the read model would keep what no workflow state ever
held (tests/integration/test_worker_kill_drill.py). An outbox event already delivered is left as
it was sent.

A write that fails because the database is unreachable, locked or restarting is retried by
Temporal until it succeeds (``workflows/retry.py``). One that fails for any other reason (a value
the database refuses, a bug) would fail the same way forever, so after a few attempts it fails
for good with ``projection_failed``, and the workflow tells ops instead of hanging
(``TaskOwnerWorkflow._await_projection_repair``).

A projection also carries what the workflow's outboxes hold (signals to the creditor's account
workflow, releases of waiting cases), and delivers them while it writes, so
one local activity does both (docs/decisions/0009). Delivery is at least once: every receiving
handler takes a repeat as a no-op. A delivery that fails or takes longer than
``DELIVERY_TIMEOUT`` fails neither the write nor the activity: the result says how many items
of each outbox were delivered, in order, and the workflow's outbox sends the rest itself, with
its own retries.

The events a projection writes also make their webhook deliveries, in the same transaction
(``store.webhooks.fan_out``: no statement of its own when no active subscription asks for
their types, the events' upsert returning the subscriptions' version; nothing without events); once it has
committed, the projection wakes the delivery workflows of the
subscriptions that got one (docs/decisions/0013-webhook-delivery.md).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Table, bindparam, delete, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker
from sqlalchemy.sql.dml import Insert
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.accounts import AccountActivities
from activities.deadlines import deadline_of
from domain.accounts import AccountProjection
from domain.cases import CaseDetails, CaseProjection, CaseRecord
from domain.chat import ChatMessage, RelationshipLink, RelationshipProjection, relationship_id
from domain.errors import PROJECTION_FAILED
from domain.escalation import LadderPlan, plan_ladder
from domain.tasks import (
    CATALOGUE,
    DeadlineRequest,
    OutboxEvent,
    ProjectionResult,
    Task,
    ladder_request,
)
from store.db import statements
from store.models import (
    NO_DEADLINE,
    Case,
    CaseHistory,
    CaseInvitation,
    CasePaymentRow,
    ChatMessageRow,
    Organisation,
    OutboxEventRow,
    Relationship,
    TaskRow,
)
from store.tasks import refresh_case_tasks
from store.webhooks import EVENTS_RETURNING, WrittenEvents, fan_out


def _case_columns(record: CaseRecord, details: dict[str, Any]) -> dict[str, object]:
    submission = record.submission
    return {
        "case_number": record.case_number,
        "creditor_id": record.creditor_id,
        "partner_id": record.partner_id,
        "partner_name": record.partner.name if record.partner else None,
        "bank_account_id": record.bank_account.id if record.bank_account else None,
        "creditor_division_id": submission.creditor_division_id,
        "submitted_by": record.submitted_by,
        "creditor_reference": submission.creditor_reference,
        "currency_code": submission.currency_code,
        "amount_to_recover": submission.amount_to_recover,
        "date": submission.date,
        "due_date": submission.due_date,
        "claim_description": submission.claim_description,
        "debtor_name": submission.debtor.name,
        "debtor": submission.debtor.model_dump(mode="json"),
        "status": record.status.value,
        "sub_status": record.sub_status.value if record.sub_status else None,
        "last_status_change": record.last_status_change,
        "close_code": record.close_code.value if record.close_code else None,
        "created_at": record.created_at,
        "details": details,
    }


# Failures that go away by themselves: the database is down, restarting, locked or slow.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,
    ConnectionError,
    TimeoutError,
)
# Attempts of a write that fails for another reason before it fails for good (a concurrent
# attempt's row can make one attempt fail once; three in a row is no race).
ATTEMPTS_BEFORE_GIVING_UP = 3
# How long a projection waits for the outbox items it carries to be delivered, well inside
# the projection's own timeout (workflows/retry.py PROJECTION_TIMEOUT): what is not delivered
# by then is left to the workflow's outbox.
DELIVERY_TIMEOUT = 2.0
# A send of carried outbox items: the projection field that carried them, how many items it
# delivers, and the call.
Send = tuple[str, int, Callable[[], Awaitable[None]]]


def describe_failure(error: BaseException) -> str:
    """What failed, in words fit for a log line and the Temporal UI: types and the database's
    message, never the values written (engines hide bound parameters: ``store.db``)."""
    if isinstance(error, sa_exc.StatementError) and error.orig is not None:
        return f"{type(error).__name__} ({type(error.orig).__name__}: {error.orig})"[:500]
    return type(error).__name__


class ProjectionActivities:
    """Activities that write the read model; one instance per worker, sharing its engine."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        messenger: AccountActivities | None = None,
        webhooks: Callable[[set[UUID]], Awaitable[None]] | None = None,
    ) -> None:
        """``messenger`` delivers the outbox items projections carry; without one, none are
        delivered here (the workflows' outboxes send them). ``webhooks`` wakes the delivery
        workflows of the subscriptions a projection wrote deliveries for, once it committed
        (``activities.webhooks.DeliveryWaker``); without one, none is woken."""
        self._sessions = sessions
        self._messenger = messenger
        self._webhooks = webhooks

    async def _wake(self, subscriptions: set[UUID]) -> None:
        """Wake the delivery workflows of ``subscriptions`` (the transaction that wrote their
        deliveries has committed). A failure fails the activity, which runs again: the
        projection is idempotent and writes no delivery twice, and it wakes them again."""
        if subscriptions and self._webhooks is not None:
            await self._webhooks(subscriptions)

    async def _deliver(self, sends: Sequence[Send]) -> dict[str, int]:
        """Run ``sends`` in order until one fails or ``DELIVERY_TIMEOUT`` passes; how many
        items of each field were delivered (module doc)."""
        sent: dict[str, int] = {}
        try:
            async with asyncio.timeout(DELIVERY_TIMEOUT):
                for name, count, send in sends:
                    await send()
                    sent[name] = sent.get(name, 0) + count
        except Exception as error:
            activity.logger.warning(
                "outbox items not delivered with the projection (%s); the workflow sends them",
                describe_failure(error),
            )
        return sent

    @asynccontextmanager
    async def _delivering(self, sends: Sequence[Send]) -> AsyncIterator[dict[str, int]]:
        """Deliver ``sends`` while the body writes; the dict holds what was delivered once the
        body is done (after the write, whether or not it failed)."""
        sent: dict[str, int] = {}
        if self._messenger is None or not sends:
            yield sent
            return
        delivery = asyncio.create_task(self._deliver(sends))
        try:
            yield sent
        finally:
            sent.update(await delivery)

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction whose failure is retried while retrying can help (see module doc)."""
        try:
            async with statements(self._sessions) as connection:
                yield connection
        except TRANSIENT_ERRORS:
            raise
        except Exception as error:
            if activity.info().attempt < ATTEMPTS_BEFORE_GIVING_UP:
                raise
            raise ApplicationError(
                f"the read model refused the write: {describe_failure(error)}",
                type=PROJECTION_FAILED,
                non_retryable=True,
            ) from None  # the cause's text may hold the values written

    @activity.defn
    async def project_case(self, projection: CaseProjection) -> ProjectionResult:
        """Write the case row as of ``projection.version`` (its columns only when the record
        came along: it changed), its new history entries, messages, tasks (with the deadlines
        they need: the answer) and events."""
        case_id = projection.case_id
        assert case_id is not None  # CaseProjection fills it in
        messenger = self._messenger
        sends: list[Send] = []
        if messenger is not None:
            sends += [
                ("account_signals", 1, functools.partial(messenger.tell_account, signal))
                for signal in projection.account_signals
            ]
        async with self._delivering(sends) as sent, self._write() as connection:
            deadlines = give_deadlines(projection.tasks)  # a calendar that fails blocks too
            ladders = give_ladders(projection.tasks)
            if projection.case is None:
                await _touch_case(connection, projection)
            else:
                await _write_case(connection, projection, projection.case)
            await _upsert(
                connection,
                CASE_HISTORY,
                [
                    {
                        "case_id": case_id,
                        "seq": entry.seq,
                        "timestamp": entry.timestamp,
                        "status": entry.status.value,
                        "sub_status": entry.sub_status.value if entry.sub_status else None,
                        "changed_by": entry.changed_by,
                        "note": entry.note,
                    }
                    for entry in projection.new_history
                ],
            )
            await write_messages(connection, projection.messages)
            await write_links(connection, projection.relationship_links, projection.modified_at)
            await write_tasks(connection, projection.tasks)
            subscriptions = await write_events(connection, projection.events)
        await self._wake(subscriptions)
        return ProjectionResult(deadlines=deadlines, sent=sent, ladders=ladders)

    @activity.defn
    async def project_relationship(self, projection: RelationshipProjection) -> ProjectionResult:
        """Write a creditor-partner pair, its new general-chat messages, tasks (with the
        deadlines they need: the answer) and events."""
        async with self._write() as connection:
            deadlines = give_deadlines(projection.tasks)  # a calendar that fails blocks too
            ladders = give_ladders(projection.tasks)
            await _upsert(
                connection,
                RELATIONSHIPS,
                [
                    {
                        "id": projection.relationship_id,
                        "version": projection.version,
                        "creditor_id": projection.creditor_id,
                        "partner_id": projection.partner_id,
                        "linked_at": projection.linked_at,
                    }
                ],
                only=("version",),
            )
            await write_messages(connection, projection.messages)
            await write_tasks(connection, projection.tasks)
            subscriptions = await write_events(connection, projection.events)
        await self._wake(subscriptions)
        return ProjectionResult(deadlines=deadlines, ladders=ladders)

    @activity.defn
    async def project_account(self, projection: AccountProjection) -> ProjectionResult:
        """Write a creditor account's contract state, tasks (with the deadlines they need: the
        answer) and events; and tell the cases it carries that the contract is signed."""
        cases = projection.to_release
        sends: list[Send] = []
        if self._messenger is not None and cases:
            sends.append(
                ("to_release", len(cases), functools.partial(self._messenger.release, cases))
            )
        async with self._delivering(sends) as sent, self._write() as connection:
            deadlines = give_deadlines(projection.tasks)  # a calendar that fails blocks too
            ladders = give_ladders(projection.tasks)
            await connection.execute(
                _ACCOUNT,
                {
                    "b_id": projection.creditor_id,
                    "b_version": projection.version,
                    "contract_signed_at": projection.contract_signed_at,
                    "account_version": projection.version,
                },
            )
            await write_tasks(connection, projection.tasks)
            subscriptions = await write_events(connection, projection.events)
        await self._wake(subscriptions)
        return ProjectionResult(deadlines=deadlines, sent=sent, ladders=ladders)


def give_deadlines(tasks: list[Task]) -> dict[str, dt.datetime]:
    """Give each task that needs its default deadline that deadline (and its original one), in
    place, before it is written: the projection writes every task with its deadline, in the
    workflow task that raised it, and answers with them (``ProjectionResult``), so the workflow
    keeps the same deadlines and a replay never computes them again (docs/decisions/0005)."""
    given: dict[str, dt.datetime] = {}
    for task in tasks:
        request = DeadlineRequest.of(task)
        if request is not None:
            task.deadline = given[task.id] = deadline_of(request)
            task.original_deadline = task.original_deadline or task.deadline
    return given


def give_ladders(tasks: list[Task]) -> dict[str, LadderPlan]:
    """Plan the ladder of each task that needs it (after ``give_deadlines``: a new task's plan
    follows the deadline it was just given; a postponed one's its new deadline), in place, and
    answer with the plans: the workflow keeps them, so a replay never computes them again."""
    given: dict[str, LadderPlan] = {}
    for task in tasks:
        request = ladder_request(task)
        if request is not None:
            task.ladder = given[task.id] = plan_ladder(CATALOGUE[task.type].ladder, request)
    return given


CASES: Table = Case.__table__  # type: ignore[assignment]
CASE_HISTORY: Table = CaseHistory.__table__  # type: ignore[assignment]
INVITATIONS: Table = CaseInvitation.__table__  # type: ignore[assignment]
MESSAGES: Table = ChatMessageRow.__table__  # type: ignore[assignment]
PAYMENTS: Table = CasePaymentRow.__table__  # type: ignore[assignment]
ORGANISATIONS: Table = Organisation.__table__  # type: ignore[assignment]
EVENTS: Table = OutboxEventRow.__table__  # type: ignore[assignment]
RELATIONSHIPS: Table = Relationship.__table__  # type: ignore[assignment]
TASKS: Table = TaskRow.__table__  # type: ignore[assignment]
# Rows that carry a version: an existing row takes a write of its version or a later one.
_VERSIONED = {CASES.name: "version", TASKS.name: "version", RELATIONSHIPS.name: "version"}
# What decides who sees a case's tasks (``store.tasks.refresh_case_tasks``) besides its
# invitations, which follow from its quotes.
_VISIBILITY = ("partner_id", "creditor_reference")


# The statements run for every projection, built once (their parameters are bound per call;
# an UPDATE without values sets the columns its parameters name).
_TOUCH_CASE = update(CASES).where(
    CASES.c.id == bindparam("b_id"), CASES.c.version <= bindparam("b_version")
)
_CASE_EXISTS = select(CASES.c.id).where(CASES.c.id == bindparam("b_id"))
_CASE_BEFORE = (
    select(CASES.c.version, CASES.c.details, *(CASES.c[name] for name in _VISIBILITY))
    .where(CASES.c.id == bindparam("b_id"))
    .with_for_update()
)
_UPDATE_CASE = update(CASES).where(CASES.c.id == bindparam("b_id"))
_ACCOUNT = update(ORGANISATIONS).where(
    ORGANISATIONS.c.id == bindparam("b_id"),
    ORGANISATIONS.c.account_version <= bindparam("b_version"),
)


# A pair's row as a case's projection writes it: only if it has none (the first case that
# linked the pair set its ``linked_at``). Version 0: the pair's own workflow writes from 1 on.
_LINK = (
    sqlite.insert(RELATIONSHIPS).on_conflict_do_nothing(index_elements=["id"]),
    postgresql.insert(RELATIONSHIPS).on_conflict_do_nothing(index_elements=["id"]),
)


async def write_links(
    connection: AsyncConnection, links: list[RelationshipLink], linked_at: dt.datetime
) -> None:
    """The ``relationships`` rows of the pairs a case linked, each only if the pair has none.
    The pair's workflow is not started here: the API starts it with the pair's first
    general-chat message, from this row (docs/decisions/0015)."""
    if links:
        statement = _LINK[connection.dialect.name == "postgresql"]
        await connection.execute(
            statement,
            [
                {
                    "id": relationship_id(link.creditor.id, link.partner.id),
                    "version": 0,
                    "creditor_id": link.creditor.id,
                    "partner_id": link.partner.id,
                    "linked_at": linked_at,
                }
                for link in links
            ],
        )


async def _touch_case(connection: AsyncConnection, projection: CaseProjection) -> None:
    """Move the row's version and ``updated_at`` (the record did not change)."""
    touched = await connection.execute(
        _TOUCH_CASE,
        {
            "b_id": projection.case_id,
            "b_version": projection.version,
            "version": projection.version,
            "updated_at": projection.modified_at,
        },
    )
    if touched.rowcount == 0 and not await connection.scalar(
        _CASE_EXISTS, {"b_id": projection.case_id}
    ):
        # The workflow sends the record with its first projection of every run.
        raise ApplicationError(
            "the case row is missing and the projection carries no record",
            type=PROJECTION_FAILED,
            non_retryable=True,
        )


async def _write_case(
    connection: AsyncConnection, projection: CaseProjection, record: CaseRecord
) -> None:
    """Insert or replace the case row (unless a later version is there); when who sees the case
    may have changed (a new row, another partner or reference, other quotes), its invitations
    and the stored visibility of its tasks follow."""
    details = CaseDetails.of(record).model_dump(mode="json")
    columns = {
        "version": projection.version,
        "updated_at": projection.modified_at,
        **_case_columns(record, details),
    }
    before = (await connection.execute(_CASE_BEFORE, {"b_id": record.case_id})).first()
    if before is None:
        await connection.execute(CASES.insert(), [{"id": record.case_id, **columns}])
        await _write_payments(connection, record)
    elif before.version <= projection.version:  # equal: a re-run task (module doc)
        await connection.execute(_UPDATE_CASE, {"b_id": record.case_id, **columns})
        if (before.details or {}).get("payments") != details.get("payments"):
            await _write_payments(connection, record)
        same_quotes = (before.details or {}).get("quotes") == details.get("quotes")
        if same_quotes and all(getattr(before, name) == columns[name] for name in _VISIBILITY):
            return  # the same partner, reference and invitations: nobody's view changed
    else:
        return
    await sync_invitations(connection, record)


async def _write_payments(connection: AsyncConnection, record: CaseRecord) -> None:
    """Make ``case_payments`` hold exactly the case's payments (``GET /api/payments``)."""
    case_id = record.case_id
    await connection.execute(delete(PAYMENTS).where(PAYMENTS.c.case_id == case_id))
    payments = record.payments
    if payments:
        await connection.execute(
            PAYMENTS.insert(),
            [
                {
                    "case_id": case_id,
                    "id": p.id,
                    "amount": p.amount,
                    "paid_on": p.paid_on,
                    "paid_to": p.paid_to.value,
                    "recorded_at": p.recorded_at,
                }
                for p in payments
            ],
        )


async def _sync_invitations(session: AsyncSession, record: CaseRecord) -> None:
    """Make ``case_invitations`` hold exactly the partners whose quote on the case is open, and
    the case's tasks their stored visibility."""
    await sync_invitations(await _connection(session), record)


async def sync_invitations(connection: AsyncConnection, record: CaseRecord) -> None:
    """``_sync_invitations`` on a connection: what changed is deleted and inserted, and the
    stored visibility of the case's tasks is brought up to date."""
    wanted = set(CaseDetails.of(record).open_invitations)
    held = set(
        await connection.scalars(
            select(INVITATIONS.c.partner_id).where(INVITATIONS.c.case_id == record.case_id)
        )
    )
    if held - wanted:
        await connection.execute(
            delete(INVITATIONS).where(
                INVITATIONS.c.case_id == record.case_id,
                INVITATIONS.c.partner_id.in_(held - wanted),
            )
        )
    if wanted - held:
        await connection.execute(
            INVITATIONS.insert(),
            [{"case_id": record.case_id, "partner_id": p} for p in sorted(wanted - held)],
        )
    # Who sees the case may have changed: so may who sees its tasks.
    await refresh_case_tasks(connection, {record.case_id})


def _task_columns(task: Task) -> dict[str, object]:
    return {
        "version": task.version,
        "workflow_id": task.workflow_id,
        "key": task.key,
        "type": task.type.value,
        "title": task.title,
        "description": task.description,
        "status": task.status.value,
        "access_level": task.access_level.value,
        "scope": task.scope.value,
        "owner_org_id": task.owner_org_id,
        "case_id": task.case_id,
        "relationship_id": task.relationship_id,
        "deadline": task.deadline,
        "sort_deadline": task.deadline or NO_DEADLINE,
        "original_deadline": task.original_deadline,
        "date_created": task.date_created,
        "date_solved": task.date_solved,
        "overdue_since": task.overdue_since,
        "assignee_id": task.assignee_id,
        "resolved_by": task.resolved_by.model_dump(mode="json") if task.resolved_by else None,
        "escalations": [step.model_dump(mode="json") for step in task.escalations] or None,
    }


async def write_tasks(db: AsyncSession | AsyncConnection, tasks: list[Task]) -> None:
    """Upsert tasks; a row never moves back in version (an equal one is a re-run task's). The
    stored case columns of the tasks written are brought up to date."""
    if not tasks:
        return
    connection = await _connection(db)
    await _upsert(connection, TASKS, [{"id": t.id, **_task_columns(t)} for t in tasks])
    await refresh_case_tasks(
        connection,
        {task.case_id for task in tasks if task.case_id},
        task_ids={task.id for task in tasks if task.case_id},
    )


async def write_messages(db: AsyncSession | AsyncConnection, messages: list[ChatMessage]) -> None:
    """Write chat messages by their deterministic ids (a re-run task's replaces an earlier
    attempt's: module doc)."""
    await _upsert(
        await _connection(db),
        MESSAGES,
        [
            {
                "id": message.id,
                "seq": message.seq,
                "case_id": message.case_id,
                "relationship_id": message.relationship_id,
                "thread_type": message.thread_type.value,
                "partner_id": message.partner_id,
                "role": message.role.value,
                "org_id": message.org_id,
                "user_id": message.user_id,
                "body": message.body,
                "attachment_ids": [str(a) for a in message.attachment_ids],
                "created_at": message.created_at,
            }
            for message in messages
        ],
    )


async def write_events(db: AsyncSession | AsyncConnection, events: list[OutboxEvent]) -> set[UUID]:
    """Write outbox events by their deterministic ids (a re-run task's replaces an earlier
    attempt's, unless it was delivered: module doc), and the webhook deliveries they make
    (``store.webhooks.fan_out``, in the same transaction); the subscriptions that got one. The
    upsert returns the subscriptions' version (``store.webhooks.EVENTS_RETURNING``), so without
    a subscriber it is the only statement."""
    if not events:
        return set()
    connection = await _connection(db)
    rows = [
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
    ]
    statement = _events_upsert(connection.dialect.name, tuple(rows[0]))
    written = (await connection.execute(statement, rows)).all()
    return await fan_out(connection, events, WrittenEvents.of(written))


@functools.cache
def _events_upsert(dialect: str, columns: tuple[str, ...]) -> Insert:
    """The events' upsert, returning what fan-out needs (built once, as ``_upsert_statement``)."""
    return _upsert_statement(dialect, EVENTS, columns, None).returning(*EVENTS_RETURNING)


async def _connection(db: AsyncSession | AsyncConnection) -> AsyncConnection:
    return await db.connection() if isinstance(db, AsyncSession) else db


async def _upsert(
    connection: AsyncConnection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    *,
    only: tuple[str, ...] | None = None,
) -> None:
    """Insert ``rows``, or give the existing rows with their keys these values (all of them, or
    ``only`` these), in one statement. A versioned table's row takes them only from a write of
    its version or a later one; an outbox event only while it is undelivered."""
    if rows:
        statement = _upsert_statement(connection.dialect.name, table, tuple(rows[0]), only)
        await connection.execute(statement, list(rows))


@functools.cache
def _upsert_statement(
    dialect: str, table: Table, columns: tuple[str, ...], only: tuple[str, ...] | None
) -> Insert:
    """Built once per shape, so SQLAlchemy's statement cache finds it without a new key."""
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    key = [column.name for column in table.primary_key.columns]
    excluded = insert.excluded
    guard: ColumnElement[bool] | None = None
    if table.name in _VERSIONED:
        version = _VERSIONED[table.name]
        guard = table.c[version] <= excluded[version]
    elif table is EVENTS:
        guard = table.c.delivered_at.is_(None)
    changed = [name for name in (only or columns) if name not in key]
    return insert.on_conflict_do_update(
        index_elements=key, set_={name: excluded[name] for name in changed}, where=guard
    )
