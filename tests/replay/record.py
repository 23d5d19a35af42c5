"""Record the histories of real workflow runs for the replay tests.

    .venv/bin/python -m tests.replay.record [SCENARIO] [--suffix SUFFIX]

Starts a Temporal dev server from the bundled binary, runs a real worker against a temporary
SQLite read model, drives the scenario the way the API does and writes every workflow history it
produces to ``tests/replay/histories/``. Scenarios:

- ``case_intake`` (default): one case created without a bank account → contract signed → bank
  account assigned → Validated → assigned to a partner → accepted (In Collection). Writes the
  case workflow (``case_intake.json``) and the creditor account workflow
  (``creditor_account.json``).

- ``case_lifecycle``: a case through a quote round (requested, quoted, selected), acceptance,
  monthly surveys, more info asked and given, a pause and resume, a payment plan, a complaint,
  payment in full, Resolved as Paid, the partner review, an unpaid commission chased and
  recorded, and the workflow completing (``case_lifecycle.json``); chat messages, one of them
  the information a held case waited for, and the pair's relationship chat
  (``relationship_chat.json``), whose last unanswered "Thanks, noted" the nightly cleanup then
  dismisses (``chat_cleanup.json``). Months pass on the
  time-skipping test server.

- ``webhook_delivery``: a subscription to ``case.created`` whose receiver answers 500 (retried
  after a minute on the time-skipping server), then 200, is woken by a case's projection and by
  two replays, the second answered 410, which disables it and ends the workflow
  (``webhook_delivery.json``).

``--suffix v0_2`` writes ``case_intake_v0_2.json`` and so on. An existing file is never
overwritten (see README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import WorkflowExecutionStatus, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from activities.webhooks import WebhookActivities, wake_deliveries
from domain import search_attributes as sa
from domain.accounts import BankAccountRef, CreditorState, SignContractInput
from domain.cases import (
    AssignBankAccountInput,
    AssignPartnerInput,
    CaseState,
    ChangeStatusInput,
    FileComplaintInput,
    PartnerDecisionInput,
    RecordCommissionInput,
    RecordPaymentInput,
    RequestQuotesInput,
    RespondToComplaintInput,
    ResumeInput,
    ReviewPartnerInput,
    SelectQuoteInput,
    SubmitQuoteInput,
    SurveyInput,
    SurveyOutcome,
)
from domain.chat import CleanupInput, PostMessageInput
from domain.enums import CaseStatus, OrgKind, Party, SubStatus
from domain.ids import creditor_workflow_id, relationship_workflow_id
from domain.tasks import TaskType
from domain.transitions import Mover
from domain.webhooks import webhook_workflow_id
from store.db import create_engine, session_factory, transaction
from store.migrate import upgrade
from store.models import BankAccount, TaskRow, WebhookDelivery
from store.webhooks import add_replay
from tests.support import (
    TEST_DATA_CONVERTER,
    bundled_binary,
    case_start,
    make_actor,
    new_case_record,
    post_in_relationship,
    submit_case,
)
from tests.webhooks import add_subscription, deliveries, receiver
from worker import build_worker
from workflows.case import CaseWorkflow
from workflows.cleanup import ChatCleanupWorkflow
from workflows.creditor import CreditorWorkflow

HISTORIES = Path(__file__).parent / "histories"
TASK_QUEUE = "replay-record"

Scenario = Callable[
    [WorkflowEnvironment, async_sessionmaker[AsyncSession]], Awaitable[dict[str, WorkflowHistory]]
]


async def _until(what: str, condition: Callable[[], Awaitable[bool]], seconds: float = 30) -> None:
    for _ in range(int(seconds * 10)):
        if await condition():
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"recording stuck: {what} did not happen within {seconds}s")


async def case_intake(
    env: WorkflowEnvironment, sessions: async_sessionmaker[AsyncSession]
) -> dict[str, WorkflowHistory]:
    """One case through the whole intake and the partner's acceptance."""
    client = env.client
    creditor = await make_actor(sessions, OrgKind.CREDITOR)
    partner = await make_actor(sessions, OrgKind.PARTNER)
    ops = await make_actor(sessions, OrgKind.OPS)
    account = BankAccountRef(id=uuid.uuid4(), currency_code="DKK")
    async with transaction(sessions) as session:
        session.add(
            BankAccount(
                id=account.id,
                org_id=creditor.org_id,
                iban="DK5000400440116243",
                holder_name="Acme ApS",
                currency_code=account.currency_code,
                created_at=dt.datetime.now(dt.UTC),
            )
        )

    start = case_start(new_case_record(creditor), task_queue=TASK_QUEUE)
    await submit_case(client, start, requested_by=creditor.principal.user_id)
    case = await start.workflow_handle()
    creditor_account = client.get_workflow_handle(creditor_workflow_id(creditor.org_id))

    async def open_account_tasks() -> set[str]:
        async with sessions() as session:
            return set(
                await session.scalars(
                    select(TaskRow.type).where(
                        TaskRow.owner_org_id == creditor.org_id, TaskRow.status == "Open"
                    )
                )
            )

    async def account_tasks_raised() -> bool:
        return await open_account_tasks() == {"SignContract", "AssignBankAccount"}

    await _until("SignContract and AssignBankAccount", account_tasks_raised)

    await creditor_account.execute_update(
        CreditorWorkflow.sign_contract, SignContractInput(user_id=creditor.principal.user_id)
    )

    async def waits_for_bank_account() -> bool:
        state = await case.query(CaseWorkflow.get_state)
        return state.record.sub_status is SubStatus.PENDING_BANK_ACCOUNT and not _busy(state)

    await _until("the case waiting for a bank account", waits_for_bank_account)

    validated = await case.execute_update(
        CaseWorkflow.assign_bank_account,
        AssignBankAccountInput(bank_account=account, user_id=creditor.principal.user_id),
    )
    assert validated.status is CaseStatus.VALIDATED, validated.status

    async def account_settled() -> bool:
        state = await creditor_account.query(CreditorWorkflow.get_state)
        return not await open_account_tasks() and not _busy(state)

    await _until("AssignBankAccount solved", account_settled)

    await case.execute_update(
        CaseWorkflow.assign_partner,
        AssignPartnerInput(partner=partner.org_ref, user_id=ops.principal.user_id),
    )
    accepted = await case.execute_update(
        CaseWorkflow.accept_case,
        PartnerDecisionInput(partner_id=partner.org_id, user_id=partner.principal.user_id),
    )
    assert accepted.status is CaseStatus.IN_COLLECTION, accepted.status

    async def case_settled() -> bool:
        return not _busy(await case.query(CaseWorkflow.get_state))

    await _until("the case settled", case_settled)
    return {
        "case_intake": await case.fetch_history(),
        "creditor_account": await creditor_account.fetch_history(),
    }


async def case_lifecycle(
    env: WorkflowEnvironment, sessions: async_sessionmaker[AsyncSession]
) -> dict[str, WorkflowHistory]:
    """One case from a quote round to a finished workflow, months of it (time-skipping)."""
    client = env.client
    creditor = await make_actor(sessions, OrgKind.CREDITOR)
    partner = await make_actor(sessions, OrgKind.PARTNER)
    ops = await make_actor(sessions, OrgKind.OPS)
    account = await _bank_account(sessions, creditor.org_id)
    record = new_case_record(creditor)
    record.bank_account = account
    start = case_start(record, task_queue=TASK_QUEUE)
    await submit_case(client, start, requested_by=creditor.principal.user_id)
    case = await start.workflow_handle()
    await client.get_workflow_handle(creditor_workflow_id(creditor.org_id)).execute_update(
        CreditorWorkflow.sign_contract, SignContractInput(user_id=creditor.principal.user_id)
    )

    async def state() -> CaseState:
        return await case.query(CaseWorkflow.get_state)

    async def validated() -> bool:
        return (await state()).record.status is CaseStatus.VALIDATED

    await _until("the case validated", validated)
    partner_user, creditor_user = partner.principal.user_id, creditor.principal.user_id

    await case.execute_update(
        CaseWorkflow.request_quotes,
        RequestQuotesInput(partners=[partner.org_ref], user_id=ops.principal.user_id),
    )
    quote = await case.execute_update(
        CaseWorkflow.submit_quote,
        SubmitQuoteInput(partner=partner.org_ref, user_id=partner_user, fee_percent=Decimal(12)),
    )
    await case.execute_update(
        CaseWorkflow.select_quote, SelectQuoteInput(quote_id=quote.id, user_id=creditor_user)
    )
    await case.execute_update(
        CaseWorkflow.accept_case,
        PartnerDecisionInput(partner_id=partner.org_id, user_id=partner_user),
    )

    async def next_month() -> None:
        due = (await state()).next_survey_at
        assert due is not None
        await env.sleep(due - await env.get_current_time() + dt.timedelta(minutes=1))

        async def survey_open() -> bool:
            return any(t.type is TaskType.UPDATE_CASE_STATUS for t in (await state()).book.tasks)

        await _until("the monthly survey", survey_open)

    def change(
        status: CaseStatus, sub_status: SubStatus | None, **more: object
    ) -> ChangeStatusInput:
        return ChangeStatusInput(
            mover=Mover.PARTNER,
            org_id=partner.org_id,
            user_id=partner_user,
            status=status,
            sub_status=sub_status,
            **more,
        )

    def resume() -> ResumeInput:
        return ResumeInput(org_id=partner.org_id, mover=Mover.PARTNER, user_id=partner_user)

    await next_month()
    await case.execute_update(
        CaseWorkflow.submit_survey,
        SurveyInput(
            partner_id=partner.org_id,
            user_id=partner_user,
            outcome=SurveyOutcome.CONTINUE,
            note="Letter sent",
        ),
    )
    await case.execute_update(
        CaseWorkflow.change_status, change(CaseStatus.ON_HOLD, SubStatus.MORE_INFO_REQUIRED)
    )
    await case.execute_update(
        CaseWorkflow.post_message,
        PostMessageInput(
            party=Party.CREDITOR,
            org_id=creditor.org_id,
            user_id=creditor_user,
            body="The debtor moved to Aarhus",  # the information: the case resumes
        ),
    )
    await case.execute_update(
        CaseWorkflow.post_message,
        PostMessageInput(
            party=Party.PARTNER, org_id=partner.org_id, user_id=partner_user, body="Thanks"
        ),
    )
    for party, actor, body in (
        (Party.CREDITOR, creditor, "More cases coming next month"),
        (Party.PARTNER, partner, "Thanks, noted"),  # the nightly cleanup dismisses the reply
    ):
        # As the API posts: the first message starts the pair's workflow (update-with-start).
        await post_in_relationship(
            client,
            sessions,
            TASK_QUEUE,
            creditor,
            partner,
            PostMessageInput(
                party=party, org_id=actor.org_id, user_id=actor.principal.user_id, body=body
            ),
        )
    relationship = client.get_workflow_handle(
        relationship_workflow_id(creditor.org_id, partner.org_id)
    )
    await next_month()
    await case.execute_update(
        CaseWorkflow.submit_survey,
        SurveyInput(
            partner_id=partner.org_id,
            user_id=partner_user,
            outcome=SurveyOutcome.PAUSE,
            note="Debtor disputes a line",
            waiting_for=Party.CREDITOR,
        ),
    )
    await env.sleep(dt.timedelta(days=2))
    await case.execute_update(CaseWorkflow.resume, resume())
    await case.execute_update(
        CaseWorkflow.change_status, change(CaseStatus.PAYMENT_PLAN, SubStatus.PLAN_ACTIVE)
    )
    complaint = await case.execute_update(
        CaseWorkflow.file_complaint,
        FileComplaintInput(user_id=creditor_user, message="No news for weeks"),
    )
    await case.execute_update(
        CaseWorkflow.respond_to_complaint,
        RespondToComplaintInput(
            partner_id=partner.org_id,
            user_id=partner_user,
            complaint_id=complaint.id,
            message="Sorry, weekly updates from now on",
        ),
    )
    await case.execute_update(
        CaseWorkflow.record_payment,
        RecordPaymentInput(
            partner_id=partner.org_id,
            user_id=partner_user,
            amount=record.submission.amount_to_recover,
            paid_on=(await env.get_current_time()).date(),
            paid_to=Party.CREDITOR,
        ),
    )
    await case.execute_update(
        CaseWorkflow.change_status, change(CaseStatus.RESOLVED, SubStatus.PAID_IN_FULL)
    )
    await case.execute_update(
        CaseWorkflow.review_partner, ReviewPartnerInput(user_id=creditor_user, rating=8)
    )
    await env.sleep(dt.timedelta(days=20))  # the commission invoice goes unpaid: ChasePayment

    async def chased() -> bool:
        return any(t.type is TaskType.CHASE_PAYMENT for t in (await state()).book.tasks)

    await _until("ChasePayment", chased)
    await case.execute_update(
        CaseWorkflow.record_commission,
        RecordCommissionInput(
            partner_id=partner.org_id,
            user_id=partner_user,
            amount=Decimal("1500.00"),
            paid_on=(await env.get_current_time()).date(),
        ),
    )
    await case.result()
    with env.auto_time_skipping_disabled():
        report = await client.execute_workflow(
            ChatCleanupWorkflow.run, CleanupInput(), id="chat-cleanup-record", task_queue=TASK_QUEUE
        )
    assert report.resolved == 1, report
    cleanup = client.get_workflow_handle("chat-cleanup-record")
    return {
        "case_lifecycle": await case.fetch_history(),
        "relationship_chat": await relationship.fetch_history(),
        "chat_cleanup": await cleanup.fetch_history(),
    }


async def webhook_delivery(
    env: WorkflowEnvironment, sessions: async_sessionmaker[AsyncSession]
) -> dict[str, WorkflowHistory]:
    """One subscription's delivery workflow: a retry, a replay and the 410 that ends it."""
    client = env.client
    creditor = await make_actor(sessions, OrgKind.CREDITOR)
    async with receiver() as hooks:
        answers = iter([500, 200, 200, 410])
        hooks.answer = lambda _n, _id: next(answers, 410)
        sub = await add_subscription(sessions, creditor.org_id, hooks.url, events=("case.created",))
        record = new_case_record(creditor)
        await submit_case(
            client,
            case_start(record, task_queue=TASK_QUEUE),
            requested_by=creditor.principal.user_id,
        )
        await hooks.wait_for(1)  # case.created, refused with a 500
        await env.sleep(dt.timedelta(minutes=2))
        await hooks.wait_for(2)  # its retry, delivered
        [first] = await deliveries(sessions, sub.id)
        async with transaction(sessions) as session:
            original = await session.get(WebhookDelivery, first.seq)
            assert original is not None
        for answered in (3, 4):  # two replays: delivered, then a 410 disables the subscription
            await add_replay(sessions, original, uuid.uuid4(), await env.get_current_time())
            await wake_deliveries(client, task_queue=TASK_QUEUE, subscriptions=[sub.id])
            await hooks.wait_for(answered)
        handle = client.get_workflow_handle(webhook_workflow_id(sub.id))

        async def ended() -> bool:
            return (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED

        await _until("the delivery workflow's end", ended)
    return {"webhook_delivery": await handle.fetch_history()}


async def _bank_account(
    sessions: async_sessionmaker[AsyncSession], org_id: uuid.UUID
) -> BankAccountRef:
    account = BankAccountRef(id=uuid.uuid4(), currency_code="DKK")
    async with transaction(sessions) as session:
        session.add(
            BankAccount(
                id=account.id,
                org_id=org_id,
                iban="DK5000400440116243",
                holder_name="Acme ApS",
                currency_code=account.currency_code,
                created_at=dt.datetime.now(dt.UTC),
            )
        )
    return account


def _busy(state: CaseState | CreditorState) -> bool:
    """Work the workflow has not finished: unprojected changes or signals not yet sent."""
    unsent = state.account_outbox if isinstance(state, CaseState) else state.to_release
    return state.version > state.projected_version or bool(unsent)


# Each scenario and the histories (file names without .json) it writes.
# Each scenario, the histories it writes and whether it needs the time-skipping server.
SCENARIOS: dict[str, tuple[Scenario, tuple[str, ...], bool]] = {
    "case_intake": (case_intake, ("case_intake", "creditor_account"), False),
    "case_lifecycle": (
        case_lifecycle,
        ("case_lifecycle", "relationship_chat", "chat_cleanup"),
        True,
    ),
    "webhook_delivery": (webhook_delivery, ("webhook_delivery",), True),
}


async def _start_env(time_skipping: bool) -> WorkflowEnvironment:
    if not time_skipping:
        return await WorkflowEnvironment.start_local(
            dev_server_existing_path=bundled_binary("temporal"),
            data_converter=TEST_DATA_CONVERTER,
            search_attributes=sa.ALL,
            dev_server_log_level="error",
        )
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=bundled_binary("temporal-test-server"),
        data_converter=TEST_DATA_CONVERTER,
    )
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={
                key.name: IndexedValueType.ValueType(key.indexed_value_type) for key in sa.ALL
            },
        )
    )
    return env


async def record(scenario: Scenario, *, time_skipping: bool = False) -> dict[str, str]:
    """Run ``scenario`` against a fresh dev server and database; each history as JSON."""
    with tempfile.TemporaryDirectory(prefix="caseloop-record-") as folder:
        database_url = f"sqlite:///{Path(folder) / 'caseloop.db'}"
        upgrade(database_url)
        engine = create_engine(database_url)
        env = await _start_env(time_skipping)
        try:
            sessions = session_factory(engine)
            async with build_worker(
                env.client,
                task_queue=TASK_QUEUE,
                sessions=sessions,
                webhooks=WebhookActivities(sessions, allow_localhost=True),  # its receiver
            ):
                histories = await scenario(env, sessions)
        finally:
            await env.shutdown()
            await engine.dispose()
    return {name: history.to_json() + "\n" for name, history in histories.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default="case_intake", choices=sorted(SCENARIOS))
    parser.add_argument("--suffix", default="", help="appended to each file name, e.g. v0_2")
    args = parser.parse_args()
    scenario, names, time_skipping = SCENARIOS[args.scenario]
    suffix = f"_{args.suffix}" if args.suffix else ""
    targets = {name: HISTORIES / f"{name}{suffix}.json" for name in names}
    existing = [str(target) for target in targets.values() if target.exists()]
    if existing:
        sys.exit(
            f"{', '.join(existing)} already recorded; histories are never overwritten, "
            "choose a --suffix"
        )
    recorded = asyncio.run(record(scenario, time_skipping=time_skipping))
    assert sorted(recorded) == sorted(names), sorted(recorded)
    HISTORIES.mkdir(parents=True, exist_ok=True)
    for name, target in targets.items():
        target.write_text(recorded[name])
        print(f"recorded {target}")


if __name__ == "__main__":
    main()
