"""The full case's shape with none of caseloop's code: the floor under target (b).

caseloop's full case (``bench fullcase``) is, in Temporal's terms, a case workflow and the
creditor's account workflow exchanging signals, each change answered in the workflow task that
made it (docs/decisions/0009): the change, a local activity the answer waits for (the
projection, which also sends the signals the change owes other workflows) and the search
attributes the change moved. This module runs that same sequence of workflow tasks, local
activities, upserts, timers, signals and workflow starts on two small workflows whose local
activities write nothing, with the SDK's default data converter and no API in front. Whatever
caseloop does on top (HTTP and authentication, pydantic payloads and their encryption, the
workflow code, the read model's writes) comes on top of this, so the floor's throughput is the
most caseloop's design could reach:

=========================  ==================================================================
full-case step             the floor's workflow tasks (case / account)
=========================  ==================================================================
create                     case: update-with-start, local activity that signal-with-starts the
                           account, upsert. account: the signal, local activity, upsert, two
                           timers (the missing-bank-account digest, the task deadline alarm)
sign contract              account: update-with-start (joining it), local activity that
                           signals the case, upsert. case: the signal, local activity
bank account               case: update, local activity that signal-with-starts the account
                           (joining it), upsert. account: the signal, local activity, upsert
assign, message 1          case: update, local activity, upsert, a timer
accept, message 2          case: update, local activity, upsert
status change              case: update, local activity
=========================  ==================================================================

The calls are caseloop's too (update-with-start for signing, signal-with-start to the account,
a plain signal to release the case). That is caseloop's history for one full case, event for
event (counted on main at 054532c with both workflows' histories listed: 8 + 3 workflow tasks,
11 local activities, 9 upserts, 4 timers, 3 signals, 2 workflow starts); ``bench fullcase``
checks it every run (its ``history events ... caseloop vs floor`` rows).

Run as its own worker process (``python -m bench.floor ADDRESS TASK_QUEUE``), as the bare
baseline's worker is, so that its CPU time is its own. Workflows run unsandboxed, as caseloop's
do (docs/decisions/0012).
"""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)
from temporalio.worker import Worker

# Registered on the harness's dev server (domain.search_attributes.dev_server_flags()).
STATUS = SearchAttributeKey.for_keyword("CaseStatus")
CREDITOR = SearchAttributeKey.for_keyword("CreditorId")
LA_TIMEOUT = timedelta(seconds=5)
LONG = timedelta(days=7)
HOUR = timedelta(hours=1)

_client: Client | None = None  # the worker's client, for the local activities that signal


@activity.defn
async def project(version: int) -> int:
    """The projection's place: writes nothing."""
    return version


def _account_start(account_id: str, task_queue: str) -> dict[str, Any]:
    """How caseloop starts (or joins) a creditor's account (activities/accounts.py)."""
    return {
        "id": account_id,
        "task_queue": task_queue,
        "id_conflict_policy": WorkflowIDConflictPolicy.USE_EXISTING,
        "search_attributes": TypedSearchAttributes([SearchAttributePair(CREDITOR, account_id)]),
    }


@activity.defn
async def tell_account(account_id: str, name: str, case_id: str, task_queue: str) -> None:
    """A case's projection delivers ``case_opened`` or ``bank_account_assigned`` to its account
    as caseloop's does: signal-with-start."""
    assert _client is not None
    await _client.start_workflow(
        FloorAccount.run,
        start_signal=name,
        start_signal_args=[case_id],
        **_account_start(account_id, task_queue),
    )


@activity.defn
async def project_and_signal(workflow_id: str, name: str, arg: str) -> None:
    """A projection that delivers one signal to another workflow (the account releasing a
    case: a plain signal, as caseloop's)."""
    assert _client is not None
    await _client.get_workflow_handle(workflow_id).signal(name, arg)


class _Loop:
    """Changes counted by handlers; each is answered once its local activity ran."""

    version = 0
    timers: list[asyncio.Task[None]]

    async def _project(self, activity_fn: Callable[..., Any] = project, *args: Any) -> None:
        self.version += 1
        await workflow.execute_local_activity(
            activity_fn, args=list(args) or [self.version], start_to_close_timeout=LA_TIMEOUT
        )

    def _upsert(self, status: str) -> None:
        workflow.upsert_search_attributes([STATUS.value_set(status)])

    def _timer(self, after: timedelta) -> None:
        self.timers.append(asyncio.create_task(workflow.sleep(after)))


@workflow.defn(name="FloorCase", sandboxed=False)
class FloorCase(_Loop):
    def __init__(self) -> None:
        self.closed = False
        self.timers = []

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self.closed)

    @workflow.update
    async def submit(self, account_id: str) -> None:
        await self._project(
            tell_account, account_id, "case_opened", workflow.info().workflow_id, _queue()
        )
        self._upsert("Created")

    @workflow.signal
    async def contract_signed(self, _: str) -> None:
        await self._project()

    @workflow.update
    async def bank_account(self, account_id: str) -> None:
        await self._project(
            tell_account, account_id, "bank_account_assigned", workflow.info().workflow_id, _queue()
        )
        self._upsert("Validated")

    @workflow.update
    async def change(self, step: str) -> None:
        """assign, accept, message 1, message 2, status change: see the module's table."""
        await self._project()
        if step != "status change":
            self._upsert(step)
        if step in ("assign", "message 1"):
            self._timer(LONG)

    @workflow.signal
    def close(self) -> None:
        self.closed = True


@workflow.defn(name="FloorAccount", sandboxed=False)
class FloorAccount(_Loop):
    def __init__(self) -> None:
        self.cases: list[str] = []
        self.timers = []

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.signal
    async def case_opened(self, case_id: str) -> None:
        self.cases.append(case_id)
        self._timer(HOUR)
        await self._project()
        self._upsert("tasks")
        self._timer(LONG)

    @workflow.update
    async def sign(self) -> None:
        for case_id in self.cases:
            await self._project(project_and_signal, case_id, "contract_signed", "signed")
        self._upsert("signed")

    @workflow.signal
    async def bank_account_assigned(self, _: str) -> None:
        await self._project()
        self._upsert("no tasks")


def _queue() -> str:
    return workflow.info().task_queue


# The steps after signing and the bank account, each one update (``FloorCase.change``).
CHANGES = ("assign", "accept", "message 1", "message 2", "status change")


async def create(client: Client, task_queue: str) -> tuple[str, str]:
    """Create a case of a new creditor (update-with-start); the case's and the account's
    workflow ids."""
    case_id = f"floor-case-{uuid.uuid4()}"
    account_id = f"floor-account-{uuid.uuid4()}"
    start = WithStartWorkflowOperation(
        FloorCase.run,
        id=case_id,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        # caseloop starts a case with its status and creditor (temporal_client.py)
        search_attributes=TypedSearchAttributes(
            [SearchAttributePair(STATUS, "Created"), SearchAttributePair(CREDITOR, account_id)]
        ),
    )
    await client.execute_update_with_start_workflow(
        FloorCase.submit, account_id, start_workflow_operation=start
    )
    return case_id, account_id


async def sign(client: Client, account_id: str, task_queue: str) -> None:
    """Sign the account's contract as caseloop's API does: update-with-start (joining the
    account the case's projection started)."""
    start = WithStartWorkflowOperation(FloorAccount.run, **_account_start(account_id, task_queue))
    await client.execute_update_with_start_workflow(
        FloorAccount.sign, start_workflow_operation=start
    )


async def full_case(client: Client, task_queue: str) -> tuple[str, str]:
    """The full case's 8 round trips on the floor's workflows (the creditor is new, as in
    ``bench fullcase``); returns the case's and the account's workflow ids."""
    case_id, account_id = await create(client, task_queue)
    case = client.get_workflow_handle(case_id)
    await sign(client, account_id, task_queue)
    await case.execute_update(FloorCase.bank_account, account_id)
    for step in CHANGES:
        await case.execute_update(FloorCase.change, step)
    return case_id, account_id


async def shape(client: Client, workflow_id: str) -> Counter[str]:
    """How many events of each type the workflow's history holds (its current run)."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return Counter(EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in history.events)


async def serve(address: str, task_queue: str) -> None:
    global _client
    _client = await Client.connect(address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with Worker(
        _client,
        task_queue=task_queue,
        workflows=[FloorCase, FloorAccount],
        activities=[project, tell_account, project_and_signal],
    ):
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], sys.argv[2]))
