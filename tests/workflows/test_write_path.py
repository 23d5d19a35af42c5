"""The write path in counts: each user action is one workflow task on the case.

Counts, not times (speed is measured in bench/): for each action the history events it added,
its workflow tasks, the activities it scheduled and the timers it cancelled. An action's effect,
its projection included, completes in the workflow task that accepted it (docs/decisions/0009):
no second workflow task, no activity scheduled on its way, one local activity (the projection,
which also delivers the account signals and relationship links the action queued), and the
wake-up timer stays as it is while the earliest deadline does not move.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

import worker as caseloop_worker
from activities.accounts import AccountActivities
from domain.accounts import AccountSignal, SignContractInput
from domain.cases import (
    AssignBankAccountInput,
    AssignPartnerInput,
    ChangeStatusInput,
    PartnerDecisionInput,
)
from domain.chat import PostMessageInput, relationship_id
from domain.enums import CaseStatus, Party, SubStatus
from domain.ids import relationship_workflow_id
from domain.tasks import task_id
from domain.transitions import Mover
from store.models import ChatMessageRow, Relationship
from tests.support import Actor, post_in_relationship
from tests.workflows.test_intake import (
    case_row,
    creditor_account,
    eventually,
    open_case,
    register_bank_account,
    validated_case,
)
from tests.workflows.test_lifecycle import runs_of
from workflows.case import CaseWorkflow
from workflows.creditor import CreditorWorkflow

# A bare update is 5 events (workflow task scheduled, started, completed; update accepted,
# completed). A chat message adds its projection (with the deadline of a task it raises) and,
# when the earliest deadline moves, a search-attribute upsert and a timer.
MAX_EVENTS_PER_CHAT_MESSAGE = 10


@dataclass
class Action:
    name: str
    events: list[HistoryEvent]
    activations: int = 0

    def count(self, kind: EventType.ValueType) -> int:
        return sum(1 for event in self.events if event.event_type == kind)

    @property
    def workflow_tasks(self) -> int:
        return self.count(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)

    @property
    def activities(self) -> int:
        return self.count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)

    @property
    def timers_cancelled(self) -> int:
        return self.count(EventType.EVENT_TYPE_TIMER_CANCELED)

    def __str__(self) -> str:
        kinds = Counter(
            EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in self.events
        )
        return (
            f"{self.name}: {len(self.events)} events {dict(kinds)}, {self.activations} activations"
        )


class Recorder:
    """Slices a workflow's history into the events each action added, and counts the worker's
    activations of the workflow (its workflow tasks' rounds through the workflow code) per
    action."""

    def __init__(self, handle: WorkflowHandle[Any, Any]) -> None:
        self.handle = handle
        self.seen = 0
        self.actions: list[Action] = []
        self.activated = 0

    def count_activations(self, monkeypatch: pytest.MonkeyPatch) -> None:
        original = caseloop_worker._ContextFreeInstance.activate
        recorder = self

        def counted(instance: Any, act: Any) -> Any:
            if instance.get_info().workflow_id == recorder.handle.id:
                recorder.activated += 1
            return original(instance, act)

        monkeypatch.setattr(caseloop_worker._ContextFreeInstance, "activate", counted)

    async def action(self, name: str, call: Awaitable[Any]) -> Action:
        activated = self.activated
        await call
        events = list((await self.handle.fetch_history()).events)
        action = Action(name, events[self.seen :], self.activated - activated)
        self.seen = len(events)
        self.actions.append(action)
        return action

    async def skip(self) -> None:
        """Forget events that no action of this test caused (another workflow's signal), once
        the workflow task they started has completed (its projection is in the read model
        before the task completes, so a test that saw the read model may be early)."""

        async def settled() -> int:
            events = Action("", list((await self.handle.fetch_history()).events))
            ended = sum(
                events.count(kind)
                for kind in (
                    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
                    EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
                    EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
                )
            )
            assert events.count(EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED) == ended
            return len(events.events)

        self.seen = await eventually(settled)


def message(actor: Actor, party: Party, body: str) -> PostMessageInput:
    return PostMessageInput(
        party=party, org_id=actor.org_id, user_id=actor.principal.user_id, body=body
    )


async def test_each_action_on_a_case_is_one_workflow_task_with_no_activity_in_its_way(
    dev_env: WorkflowEnvironment,
    worker: Worker,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Create: a case without a bank account, whose creditor has not signed the contract.
    handle, record = await open_case(dev_env, creditor, task_queue)
    case_id = record.case_id
    history = list((await handle.fetch_history()).events)
    recorder = Recorder(handle)
    recorder.count_activations(monkeypatch)
    recorder.seen = len(history)
    recorder.actions.append(Action("create", history))
    # Right after create the creditor's account workflow exists and knows the case (the
    # signal ran beside the projection): signing now is no race.
    view = await creditor_account(dev_env, creditor).query(CreditorWorkflow.view)
    assert view.cases_waiting_for_contract == 1

    account = await register_bank_account(sessions, creditor)
    await recorder.action(
        "assign bank account",
        handle.execute_update(
            CaseWorkflow.assign_bank_account,
            AssignBankAccountInput(bank_account=account, user_id=creditor.principal.user_id),
        ),
    )
    await creditor_account(dev_env, creditor).execute_update(
        CreditorWorkflow.sign_contract,
        SignContractInput(user_id=creditor.principal.user_id),
    )

    async def validated() -> None:
        row = await case_row(sessions, case_id)
        assert (row.status, row.sub_status) == ("Validated", None)

    await eventually(validated)
    await recorder.skip()  # the contract_signed signal from the account workflow

    await recorder.action(
        "assign partner",
        handle.execute_update(
            CaseWorkflow.assign_partner,
            AssignPartnerInput(partner=partner.org_ref, user_id=ops.principal.user_id),
        ),
    )
    await recorder.action(
        "accept",
        handle.execute_update(
            CaseWorkflow.accept_case,
            PartnerDecisionInput(partner_id=partner.org_id, user_id=partner.principal.user_id),
        ),
    )
    first = await recorder.action(
        "chat message (raises ReplyToChat)",
        handle.execute_update(
            CaseWorkflow.post_message, message(partner, Party.PARTNER, "Debtor called back")
        ),
    )
    second = await recorder.action(
        "chat message (same task, same deadline)",
        handle.execute_update(
            CaseWorkflow.post_message, message(partner, Party.PARTNER, "and promised to pay")
        ),
    )
    status = await recorder.action(
        "status change",
        handle.execute_update(
            CaseWorkflow.change_status,
            ChangeStatusInput(
                mover=Mover.PARTNER,
                org_id=partner.org_id,
                user_id=partner.principal.user_id,
                status=CaseStatus.PAYMENT_PLAN,
                sub_status=SubStatus.PLAN_ACTIVE,
                note="Pays in three instalments",
            ),
        ),
    )
    report = "\n".join(str(action) for action in recorder.actions)
    print(report)  # the counts, for the record (pytest -s)

    for action in recorder.actions:
        assert action.workflow_tasks == 1, report
        assert action.activities == 0, report
    for chat in (first, second):
        assert len(chat.events) <= MAX_EVENTS_PER_CHAT_MESSAGE, report
    # New tasks get their deadlines from the projection, and the signals create, bank account
    # and assign send to the creditor's account or the relationship go with it: one local
    # activity (one marker) on each action's path.
    for action in recorder.actions:
        assert action.count(EventType.EVENT_TYPE_MARKER_RECORDED) == 1, report
    # So every action (create, whose activations are counted from the start, aside) is two
    # activations of the workflow, as a bare update with a projection is: the update, which
    # schedules the projection; its result, with which the update answers.
    for action in recorder.actions[1:]:
        assert action.activations == 2, report
    # The second message raised nothing and moved no deadline: its timer stayed as it was, and
    # it wrote the same search attributes, so none of that is in history.
    assert second.timers_cancelled == 0, report
    assert second.count(EventType.EVENT_TYPE_TIMER_STARTED) == 0, report
    assert second.count(EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES) == 0, report
    assert len(second.events) <= 7, report
    # ... while the burst timer of the creditor's e-mail runs (domain/notices.py): the first
    # partner message started it in its own workflow task (one TimerStarted more, no task
    # more); the second moved the burst's moment later at no cost in history.
    burst = (await handle.query(CaseWorkflow.get_state)).partner_burst
    assert burst is not None and (burst.first_seq, burst.last_seq) == (1, 2), report
    assert first.count(EventType.EVENT_TYPE_TIMER_STARTED) >= 1, report
    assert status.timers_cancelled == 0, report
    # Every answer came after its change was in the read model.
    async with sessions() as session:
        assert await session.get(ChatMessageRow, task_id(handle.id, "message#2")) is not None
    row = await case_row(sessions, case_id)
    assert (row.status, row.sub_status) == (CaseStatus.PAYMENT_PLAN, SubStatus.PLAN_ACTIVE)


class SignalsFailingAtFirst(AccountActivities):
    """The real signal to the creditor's account, failing in each activity's first attempt
    while ``failing`` (Temporal briefly unreachable): the projection's delivery of it, and the
    outbox's first send."""

    attempts: list[tuple[str, int]]  # (activity, attempt) of each try while failing
    failing = False

    async def tell_account(self, signal: AccountSignal) -> None:
        if self.failing:
            info = activity.info()
            self.attempts.append((info.activity_type, info.attempt))
            if info.attempt == 1:
                raise RuntimeError("the Temporal frontend did not answer")
        await super().tell_account(signal)


# The tries of a signal that fails at first: the projection carried it, the outbox's first send
# (in the same workflow task) failed too, its retry (after a timer) delivered it.
FAILED_SIGNAL = [("project_case", 1), ("signal_creditor_account", 1)]
RETRIED_SIGNAL = [*FAILED_SIGNAL, ("signal_creditor_account", 2)]


async def test_a_failing_signal_to_another_workflow_neither_delays_the_answer_nor_is_lost(
    dev_env: WorkflowEnvironment,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
) -> None:
    signals = SignalsFailingAtFirst(dev_env.client, task_queue)
    signals.attempts = []
    async with caseloop_worker.build_worker(
        dev_env.client,
        task_queue=task_queue,
        sessions=sessions,
        accounts=signals,
    ):
        handle, _ = await open_case(dev_env, creditor, task_queue)  # lacks a bank account
        account = creditor_account(dev_env, creditor)
        assert (await account.query(CreditorWorkflow.view)).cases_missing_bank_account == 1
        recorder = Recorder(handle)
        await recorder.skip()
        signals.failing = True
        bank_account = await register_bank_account(sessions, creditor)
        assigned = await recorder.action(
            "assign bank account (the signal to the account fails once)",
            handle.execute_update(
                CaseWorkflow.assign_bank_account,
                AssignBankAccountInput(
                    bank_account=bank_account, user_id=creditor.principal.user_id
                ),
            ),
        )
        # The change answered from the workflow task that accepted it; the signal's retry
        # waits on a timer of its own (LOCAL_RETRY_THRESHOLD), not in the caller's way.
        assert assigned.workflow_tasks == 1, assigned
        assert signals.attempts == FAILED_SIGNAL, assigned

        async def told() -> None:
            assert (await account.query(CreditorWorkflow.view)).cases_missing_bank_account == 0

        await eventually(told)
        assert signals.attempts == RETRIED_SIGNAL
        state = await handle.query(CaseWorkflow.get_state)
        assert state.account_outbox == []


async def test_a_signal_still_unsent_holds_continue_as_new_back_until_it_is_sent(
    short_history_env: WorkflowEnvironment,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
) -> None:
    env = short_history_env  # suggests continue-as-new to nearly every workflow task
    signals = SignalsFailingAtFirst(env.client, task_queue)
    signals.attempts = []
    async with caseloop_worker.build_worker(
        env.client,
        task_queue=task_queue,
        sessions=sessions,
        accounts=signals,
    ):
        handle, _ = await open_case(env, creditor, task_queue)  # lacks a bank account
        account = creditor_account(env, creditor)
        assert (await account.query(CreditorWorkflow.view)).cases_missing_bank_account == 1
        signals.failing = True
        bank_account = await register_bank_account(sessions, creditor)
        await handle.execute_update(
            CaseWorkflow.assign_bank_account,
            AssignBankAccountInput(bank_account=bank_account, user_id=creditor.principal.user_id),
        )

        async def told() -> None:
            assert (await account.query(CreditorWorkflow.view)).cases_missing_bank_account == 0

        await eventually(told)
        latest = env.client.get_workflow_handle(handle.id)

        async def assigning_run_continued() -> list[HistoryEvent]:
            for run_id in await runs_of(env, handle.id):
                run = env.client.get_workflow_handle(handle.id, run_id=run_id)
                events = list((await run.fetch_history()).events)
                kinds = [event.event_type for event in events]
                if EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED in kinds and any(
                    e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
                    == "assign_bank_account"
                    for e in events
                    if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
                ):
                    assert kinds[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
                    return events
            raise AssertionError("no run accepted the bank account")

        events = await eventually(assigning_run_continued)
        state = await latest.query(CaseWorkflow.get_state)

    kinds = [event.event_type for event in events]
    # The run that took the bank account was told to continue as new, but waited for the
    # signal's retry (its backoff timer fired in that run) and continued only once it was sent.
    answered = kinds.index(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED)
    assert EventType.EVENT_TYPE_TIMER_FIRED in kinds[answered:]
    assert signals.attempts == RETRIED_SIGNAL
    assert state.account_outbox == []
    assert state.record.bank_account == bank_account


async def test_assigning_writes_the_pair_and_its_first_general_message_starts_its_workflow(
    dev_env: WorkflowEnvironment,
    worker: Worker,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    handle = await validated_case(dev_env, sessions, creditor, task_queue)
    recorder = Recorder(handle)
    await recorder.skip()
    assigned = await recorder.action(
        "assign partner",
        handle.execute_update(
            CaseWorkflow.assign_partner,
            AssignPartnerInput(partner=partner.org_ref, user_id=ops.principal.user_id),
        ),
    )
    assert assigned.workflow_tasks == 1, assigned
    # When the assignment answers, the pair is in the read model (its general chat can be
    # listed and posted to), and no workflow of the pair runs yet: nothing else worked for it.
    pair_id = relationship_id(creditor.org_id, partner.org_id)
    async with sessions() as session:
        row = await session.get(Relationship, pair_id)
    assert row is not None and row.version == 0
    pair = dev_env.client.get_workflow_handle(
        relationship_workflow_id(creditor.org_id, partner.org_id)
    )
    with pytest.raises(RPCError) as missing:
        await pair.describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND
    state = await handle.query(CaseWorkflow.get_state)
    assert state.pending_links == []
    # The first general-chat message starts it (update-with-start): one workflow task, one
    # local activity (the projection), as any chat message.
    posted = await post_in_relationship(
        dev_env.client,
        sessions,
        task_queue,
        creditor,
        partner,
        message(creditor, Party.CREDITOR, "Welcome aboard"),
    )
    assert posted.relationship_id == pair_id
    first = Action("first general message", list((await pair.fetch_history()).events))
    assert first.workflow_tasks == 1, first
    assert first.count(EventType.EVENT_TYPE_MARKER_RECORDED) == 1, first
    assert first.activities == 0, first
    async with sessions() as session:
        row = await session.get(Relationship, pair_id)
        assert await session.get(ChatMessageRow, posted.id) is not None
    assert row is not None and row.version >= 1


def signals_named(events: list[HistoryEvent], name: str) -> int:
    return sum(
        1
        for event in events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        and event.workflow_execution_signaled_event_attributes.signal_name == name
    )


async def test_signing_is_one_workflow_task_that_answers_once_every_waiting_case_is_told(
    dev_env: WorkflowEnvironment,
    worker: Worker,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
) -> None:
    # Two cases without a bank account wait for the contract.
    cases = [(await open_case(dev_env, creditor, task_queue))[0] for _ in range(2)]
    account = creditor_account(dev_env, creditor)
    assert (await account.query(CreditorWorkflow.view)).cases_waiting_for_contract == 2
    recorder = Recorder(account)
    await recorder.skip()

    signed = await recorder.action(
        "sign contract",
        account.execute_update(
            CreditorWorkflow.sign_contract, SignContractInput(user_id=creditor.principal.user_id)
        ),
    )
    # When signing answers, every waiting case already has its signal in its history ...
    for case in cases:
        assert signals_named(list((await case.fetch_history()).events), "contract_signed") == 1
    # ... sent by a local activity of the answering task: no external-signal command, whose
    # confirmation would cost the account a second workflow task.
    assert signed.workflow_tasks == 1, signed
    assert signed.activities == 0, signed
    # The releases went with the account's projection: one local activity, one marker.
    assert signed.count(EventType.EVENT_TYPE_MARKER_RECORDED) == 1, signed
    assert signed.count(EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED) == 0
    # So the action that completes intake answers with the case Validated: no polling.
    bank_account = await register_bank_account(sessions, creditor)
    answered = await cases[0].execute_update(
        CaseWorkflow.assign_bank_account,
        AssignBankAccountInput(bank_account=bank_account, user_id=creditor.principal.user_id),
    )
    assert (answered.status, answered.sub_status) == (CaseStatus.VALIDATED, None)
    row = await case_row(sessions, answered.case_id)
    assert (row.status, row.sub_status) == ("Validated", None)
    await recorder.skip()  # bank_account_assigned, from the case
    assert (await account.query(CreditorWorkflow.get_state)).to_release == []
