"""The e-mail rules with durable timers (domain/notices.py), on the time-skipping server, with the
real worker sending through a real SMTP server (aiosmtpd) in the test's event loop: the
creditor's e-mail when a partner writes, and the missing-bank-account digest."""

from __future__ import annotations

import datetime as dt
import email.policy
from collections.abc import AsyncIterator
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.mail import MailActivities, SmtpConfig
from domain.cases import AssignBankAccountInput
from domain.chat import ChatMessage, PostMessageInput, relationship_id
from domain.enums import OrgKind, Party
from domain.notices import (
    BANK_ACCOUNT_DIGEST_DELAY,
    PARTNER_BURST_QUIET,
    PartnerWroteNotice,
    notice_workflow_id,
)
from domain.tasks import AssignTaskInput, TaskType
from mail.sink import KeepInDirectory, list_messages
from settings import Settings
from store.models import Organisation, Relationship, User
from tests.mail.conftest import start
from tests.portal.conftest import portal  # noqa: F401 (a fixture)
from tests.portal.support import signed_in
from tests.support import Actor, make_actor, post_in_relationship
from tests.workflows.test_intake import (
    creditor_account,
    eventually,
    open_case,
    register_bank_account,
)
from tests.workflows.test_lifecycle import accepted_case, open_tasks, state_of
from worker import build_worker
from workflows.case import CaseWorkflow
from workflows.creditor import CreditorWorkflow

PORTAL = "https://caseloop.test/portal"


class Sink:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def messages(self) -> list[EmailMessage]:
        parser = BytesParser(policy=email.policy.default)
        return [
            parser.parsebytes(m.path.read_bytes())  # type: ignore[misc]
            for m in list_messages(self.directory)
        ]

    def received(self) -> int:
        return len(list_messages(self.directory))


@pytest.fixture
async def sink(tmp_path: Path) -> AsyncIterator[tuple[Sink, int]]:
    handler = KeepInDirectory(tmp_path / "mail")
    server, port = await start(handler)
    async with server:
        yield Sink(handler.directory), port


def worker_sending_to(
    ts_env: WorkflowEnvironment,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    port: int,
    **options: Any,
) -> Worker:
    """The real worker, sending e-mail to the test's SMTP server; links go to ``PORTAL``."""
    smtp = SmtpConfig(
        host="127.0.0.1",
        port=port,
        security="none",
        user="",
        password=None,
        timeout=5,
        sender="caseloop <no-reply@mail.caseloop.test>",
        portal_base_url=PORTAL,
    )
    return build_worker(
        ts_env.client,
        task_queue=task_queue,
        sessions=sessions,
        mail=MailActivities(sessions, smtp),
        **options,
    )


@pytest.fixture
async def mail_worker(
    ts_env: WorkflowEnvironment,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    sink: tuple[Sink, int],
    ts_leaves_no_workflows: None,
) -> AsyncIterator[Worker]:
    async with worker_sending_to(ts_env, task_queue, sessions, sink[1]) as running:
        yield running


def message(actor: Actor, party: Party, body: str, **more: Any) -> PostMessageInput:
    return PostMessageInput(
        party=party, org_id=actor.org_id, user_id=actor.principal.user_id, body=body, **more
    )


def text_of(mail: EmailMessage) -> str:
    part = mail.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def address_of(mail: EmailMessage) -> str:
    return parseaddr(str(mail["To"]))[1]


def link_in(text: str) -> str:
    [line] = [line for line in text.splitlines() if line.startswith("Read and answer: ")]
    return line.removeprefix("Read and answer: ")


async def email_of(sessions: async_sessionmaker[AsyncSession], actor: Actor) -> str:
    async with sessions() as session:
        user = await session.get(User, actor.principal.user_id)
        assert user is not None
        return user.email


async def post(handle: WorkflowHandle[Any, Any], post: PostMessageInput) -> ChatMessage:
    result: ChatMessage = await handle.execute_update(CaseWorkflow.post_message, post)
    return result


async def test_five_partner_messages_within_three_minutes_give_one_email_ten_minutes_after_the_fifth(
    ts_env: WorkflowEnvironment,
    mail_worker: Worker,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    sink: tuple[Sink, int],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    portal: httpx.AsyncClient,  # noqa: F811
    settings: Settings,
) -> None:
    mails, _ = sink
    colleague = await make_actor(sessions, OrgKind.CREDITOR, org_id=creditor.org_id)
    handle = await accepted_case(ts_env, sessions, creditor, partner, ops, task_queue)
    case_id = (await state_of(handle)).record.case_id
    sent = []
    for n in range(1, 6):
        if n > 1:
            await ts_env.sleep(dt.timedelta(seconds=40))  # five within 3 minutes
        sent.append(await post(handle, message(partner, Party.PARTNER, f"Update {n} <b>")))
    assert sent[-1].created_at - sent[0].created_at < dt.timedelta(minutes=3)

    await ts_env.sleep(PARTNER_BURST_QUIET - dt.timedelta(minutes=1))
    assert mails.received() == 0, "not before 10 minutes without a new message"
    await ts_env.sleep(dt.timedelta(minutes=2))

    async def both_copies() -> list[EmailMessage]:
        received = mails.messages()
        assert len(received) == 2
        return received

    received = await eventually(both_copies)
    await ts_env.sleep(dt.timedelta(hours=2))
    assert mails.received() == 2, "one e-mail per burst (a copy for each of the two users)"
    assert sorted(address_of(m) for m in received) == sorted(
        [await email_of(sessions, creditor), await email_of(sessions, colleague)]
    ), "no user is assigned: every active user of the creditor"
    case = await state_of(handle)
    async with sessions() as session:
        partner_org = await session.get(Organisation, partner.org_id)
    assert partner_org is not None
    assert received[0]["Subject"] == f"{partner_org.name} wrote in case {case.record.case_number}"
    text = text_of(received[0])
    for n in range(1, 6):
        assert f"Update {n} <b>" in text
    # Sent when the burst's moment passed: its NoticeWorkflow started 10 minutes after the fifth.
    notice = PartnerWroteNotice(
        case_id=case_id, first_seq=1, last_seq=5, last_message_id=sent[-1].id
    )
    described = await ts_env.client.get_workflow_handle(
        notice_workflow_id(notice.idempotency_key)
    ).describe()
    started_after = described.start_time - sent[-1].created_at
    assert PARTNER_BURST_QUIET <= started_after < PARTNER_BURST_QUIET + dt.timedelta(seconds=30)

    # The link is the ReplyToChat task's solutionUrl, and it opens the page that answers it.
    [reply] = await open_tasks(sessions, TaskType.REPLY_TO_CHAT)
    link = link_in(text)
    assert link == f"{PORTAL}/cases/{case_id}/chat"
    await signed_in(portal, sessions, creditor)
    page = await portal.get(urlsplit(link).path)
    assert page.status_code == 200, page.text[:300]
    assert 'enctype="multipart/form-data"' in page.text and "Update 5 &lt;b&gt;" in page.text
    assert reply.case_id == case_id


async def test_two_bursts_an_hour_apart_give_two_emails_and_an_assigned_user_alone_gets_it(
    ts_env: WorkflowEnvironment,
    mail_worker: Worker,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    sink: tuple[Sink, int],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    mails, _ = sink
    colleague = await make_actor(sessions, OrgKind.CREDITOR, org_id=creditor.org_id)
    handle = await accepted_case(ts_env, sessions, creditor, partner, ops, task_queue)
    await post(handle, message(partner, Party.PARTNER, "First burst"))
    await ts_env.sleep(PARTNER_BURST_QUIET + dt.timedelta(minutes=1))
    await eventually(lambda: _expect(mails, 2))

    # The creditor gives the case's chat task to the colleague; an hour later the partner
    # writes again.
    [reply] = await open_tasks(sessions, TaskType.REPLY_TO_CHAT)
    await handle.execute_update(
        CaseWorkflow.assign_task,
        AssignTaskInput(
            task_id=reply.id,
            assignee_id=colleague.principal.user_id,
            user_id=creditor.principal.user_id,
        ),
    )
    await ts_env.sleep(dt.timedelta(hours=1))
    await post(handle, message(partner, Party.PARTNER, "Second burst"))
    await ts_env.sleep(PARTNER_BURST_QUIET + dt.timedelta(minutes=1))
    await eventually(lambda: _expect(mails, 3))
    second = [m for m in mails.messages() if "Second burst" in text_of(m)]
    assert len(second) == 1, "the second burst went to the assigned user only"
    assert address_of(second[0]) == await email_of(sessions, colleague)
    assert "First burst" not in text_of(second[0]), "each e-mail holds its own burst"


async def test_a_creditor_answer_in_every_thread_of_the_burst_sends_no_email(
    ts_env: WorkflowEnvironment,
    mail_worker: Worker,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    sink: tuple[Sink, int],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    mails, _ = sink
    handle = await accepted_case(ts_env, sessions, creditor, partner, ops, task_queue)
    await post(handle, message(partner, Party.PARTNER, "Debtor called"))
    await ts_env.sleep(dt.timedelta(minutes=2))
    await post(handle, message(creditor, Party.CREDITOR, "Thanks, noted"))
    assert (await state_of(handle)).partner_burst is None
    await ts_env.sleep(PARTNER_BURST_QUIET + dt.timedelta(minutes=5))
    await ts_env.sleep(dt.timedelta(seconds=1))
    assert mails.received() == 0
    # The answer ended that burst: the next partner message starts a new one, e-mailed alone.
    await post(handle, message(partner, Party.PARTNER, "One more thing"))
    assert (await state_of(handle)).partner_burst is not None
    await ts_env.sleep(PARTNER_BURST_QUIET + dt.timedelta(minutes=1))
    await eventually(lambda: _expect(mails, 1))
    [mail] = mails.messages()
    assert "One more thing" in text_of(mail) and "Debtor called" not in text_of(mail)


async def _expect(mails: Sink, count: int) -> None:
    assert mails.received() == count


async def test_cases_created_twenty_minutes_apart_without_bank_accounts_give_one_digest(
    ts_env: WorkflowEnvironment,
    mail_worker: Worker,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    sink: tuple[Sink, int],
    creditor: Actor,
) -> None:
    mails, _ = sink
    numbers = []
    for n in range(3):
        if n:
            await ts_env.sleep(dt.timedelta(minutes=20))
        _, record = await open_case(ts_env, creditor, task_queue)
        numbers.append(record.case_number)
    account = creditor_account(ts_env, creditor)

    async def batch_of_three() -> None:
        batch = (await account.query(CreditorWorkflow.get_state)).bank_account_batch
        assert batch is not None and len(batch.cases) == 3

    await eventually(batch_of_three)
    await ts_env.sleep(BANK_ACCOUNT_DIGEST_DELAY - dt.timedelta(minutes=1))
    assert mails.received() == 0, "not before an hour after the third"
    await ts_env.sleep(dt.timedelta(minutes=2))
    await eventually(lambda: _expect(mails, 1))
    [digest] = mails.messages()
    text = text_of(digest)
    for number in numbers:
        assert number in text
    assert digest["Subject"] == "3 cases need a bank account"
    assert f"{PORTAL}/account/bank-accounts" in text, "AssignBankAccount's solutionUrl"
    await ts_env.sleep(dt.timedelta(hours=3))
    assert mails.received() == 1


async def test_a_batch_whose_cases_all_got_a_bank_account_sends_no_digest(
    ts_env: WorkflowEnvironment,
    mail_worker: Worker,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    sink: tuple[Sink, int],
    creditor: Actor,
) -> None:
    mails, _ = sink
    handles = []
    for n in range(2):
        if n:
            await ts_env.sleep(dt.timedelta(minutes=20))
        handles.append((await open_case(ts_env, creditor, task_queue))[0])
    bank_account = await register_bank_account(sessions, creditor)
    for handle in handles:
        await handle.execute_update(
            CaseWorkflow.assign_bank_account,
            AssignBankAccountInput(bank_account=bank_account, user_id=creditor.principal.user_id),
        )
    account = creditor_account(ts_env, creditor)

    async def none_missing() -> None:
        state = await account.query(CreditorWorkflow.get_state)
        assert state.missing_bank_account == [] and state.bank_account_batch is not None

    await eventually(none_missing)
    await ts_env.sleep(BANK_ACCOUNT_DIGEST_DELAY + dt.timedelta(minutes=5))

    async def batch_done() -> None:
        assert (await account.query(CreditorWorkflow.get_state)).bank_account_batch is None

    await eventually(batch_done)
    assert mails.received() == 0


async def test_a_partners_burst_in_the_general_chat_is_one_email_linking_the_relationship_chat(
    ts_env: WorkflowEnvironment,
    mail_worker: Worker,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    sink: tuple[Sink, int],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    mails, _ = sink
    await accepted_case(ts_env, sessions, creditor, partner, ops, task_queue)
    pair = relationship_id(creditor.org_id, partner.org_id)

    async def linked() -> None:
        async with sessions() as session:
            assert await session.get(Relationship, pair) is not None

    await eventually(linked)
    for body in ("New rates from January", "and a question on invoicing"):
        # As the API posts: the first message starts the pair's workflow (decision 0015).
        await post_in_relationship(
            ts_env.client,
            sessions,
            task_queue,
            creditor,
            partner,
            message(partner, Party.PARTNER, body),
        )
        await ts_env.sleep(dt.timedelta(minutes=4))
    assert mails.received() == 0
    await ts_env.sleep(PARTNER_BURST_QUIET)
    await eventually(lambda: _expect(mails, 1))
    [mail] = mails.messages()
    text = text_of(mail)
    assert "New rates from January" in text and "and a question on invoicing" in text
    assert "in your general chat" in text and str(mail["Subject"]).endswith("general chat")
    assert link_in(text) == f"{PORTAL}/relationships/{pair}/chat"
