"""The e-mail fault drill (issue 13, item 5): the worker process is SIGKILLed while it is in the
middle of an SMTP conversation, started again, and exactly one e-mail arrives at the real SMTP
server (aiosmtpd, in this process). Starting the same e-mail again sends nothing more."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowHandle
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.testing import WorkflowEnvironment

from domain.mail import SEND_EMAIL_TIMEOUT, SentEmails, email_workflow_id
from mail.sink import list_messages
from settings import Settings
from store.models import SentEmail
from tests.integration.test_worker_kill_drill import (
    WorkerProcess,
    process_env,
    remove_cleanup_schedule,
)
from tests.mail.conftest import HoldingSink, held_sink, partner_wrote
from workflows.mail import SendEmailWorkflow


@pytest.fixture(name="held_sink")
async def held_sink_fixture(tmp_path: Path) -> AsyncIterator[tuple[HoldingSink, int]]:
    async for running in held_sink(tmp_path / "received", lambda n: n == 1):
        yield running


async def test_a_worker_killed_mid_send_sends_the_email_exactly_once_after_restart(
    dev_env: WorkflowEnvironment,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    held_sink: tuple[HoldingSink, int],
    tmp_path: Path,
) -> None:
    sink, port = held_sink
    env = process_env(dev_env, settings, tmp_path / "var") | {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(port),
        "SMTP_SECURITY": "none",
        "MAIL_FROM": "caseloop <no-reply@mail.caseloop.test>",
    }
    worker = WorkerProcess(env, tmp_path)
    email = partner_wrote("alice@creditor.example", key=f"drill:{settings.temporal_task_queue}")
    workflow_id = email_workflow_id(email.idempotency_key)
    worker.start()
    try:
        await worker.polling()
        handle: WorkflowHandle[SendEmailWorkflow, SentEmails] = await dev_env.client.start_workflow(
            SendEmailWorkflow.run, email, id=workflow_id, task_queue=settings.temporal_task_queue
        )
        await asyncio.wait_for(sink.holding.wait(), 60)
        worker.kill()  # mid-conversation: the copy is claimed, nothing handed over yet
        sink.release.set()
        await asyncio.sleep(1)
        assert list_messages(sink.directory) == []
        with pytest.raises(WorkflowAlreadyStartedError):  # the same e-mail is one workflow
            await dev_env.client.start_workflow(
                SendEmailWorkflow.run,
                email,
                id=workflow_id,
                task_queue=settings.temporal_task_queue,
            )

        worker.start()
        await worker.polling()
        # The dead attempt times out, and its claim expires after it: then the retry sends.
        timeout = SEND_EMAIL_TIMEOUT.total_seconds() * 3
        result = await asyncio.wait_for(handle.result(), timeout)
        assert result == SentEmails(sent=1)
        await asyncio.sleep(2)  # nothing else comes
        [received] = list_messages(sink.directory)
        assert received.to == "Alice <alice@creditor.example>"

        # The same e-mail once more (its workflow finished, so the id is free again): not sent.
        again = await dev_env.client.execute_workflow(
            SendEmailWorkflow.run,
            email,
            id=workflow_id,
            task_queue=settings.temporal_task_queue,
            result_type=SentEmails,
        )
        assert again == SentEmails(already_sent=1)
        assert len(list_messages(sink.directory)) == 1
        async with sessions() as session:
            row = (await session.execute(select(SentEmail))).scalar_one()
        assert row.outcome == "sent" and row.message_id == received.message_id
    finally:
        worker.stop()
        await remove_cleanup_schedule(dev_env, settings.temporal_task_queue)
