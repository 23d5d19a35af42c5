"""The digests' fault drill (issue 13, item 5): the daily summary sends a page of e-mails from one
activity (``send_daily_summaries``); the worker process is SIGKILLed while that page is half
sent, with e-mails in the middle of their SMTP conversations, and a second worker process
finishes the run. Every partner user gets exactly one summary at the real SMTP server (aiosmtpd,
in this process): none lost, none doubled."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, ScheduleActionStartWorkflow
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from domain.digests import DigestCounts, DigestInput
from domain.enums import OrgKind
from mail.sink import list_messages
from schedules import NIGHTLY
from settings import Settings
from store.models import DailySummaryMark, SentEmail
from tests.integration.test_worker_kill_drill import (
    WorkerProcess,
    process_env,
    remove_cleanup_schedule,
)
from tests.mail.conftest import HoldingSink, held_sink
from tests.mail.test_digests import MORNING, add_task, org
from workflows.digests import PAGE_TIMEOUT, DailySummaryWorkflow

USERS = 60  # partner users, in two organisations
PAGE_SIZE = 40  # two pages: the kill lands in the first
PASSED = 10  # the conversations the server finishes before it starts holding them
CONCURRENCY = 8  # DIGEST_SEND_CONCURRENCY: at the kill, 8 e-mails in flight, 22 not started


@pytest.fixture(name="held_sink")
async def held_sink_fixture(tmp_path: Path) -> AsyncIterator[tuple[HoldingSink, int]]:
    async for running in held_sink(tmp_path / "received", lambda n: n > PASSED):
        yield running


async def remove_digest_schedules(client: Client, task_queue: str) -> None:
    """The hourly and daily digest schedules the worker process created for ``task_queue``:
    deleted, so that only the drill's run sends (and the shared dev server is left as it was)."""
    for job in NIGHTLY:
        handle = client.get_schedule_handle(job.name)
        try:
            action = (await handle.describe()).schedule.action
            if isinstance(action, ScheduleActionStartWorkflow) and action.task_queue == task_queue:
                await handle.delete()
        except RPCError:
            pass


async def until(what: str, check: Callable[[], Awaitable[bool]], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, f"not within {seconds}s: {what}"
        await asyncio.sleep(0.05)


async def test_a_worker_killed_mid_page_of_daily_summaries_sends_each_exactly_once(
    dev_env: WorkflowEnvironment,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    held_sink: tuple[HoldingSink, int],
    tmp_path: Path,
) -> None:
    sink, port = held_sink
    addresses: list[str] = []
    for n in range(2):
        names = [f"user{n}x{i:02}" for i in range(USERS // 2)]
        partner, _ = await org(sessions, OrgKind.PARTNER, *names)
        addresses += [f"{name}@partner.example" for name in names]
        await add_task(
            sessions, partner, f"Update case status {n}", created=MORNING - dt.timedelta(hours=3)
        )
    env = process_env(dev_env, settings, tmp_path / "var") | {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(port),
        "SMTP_SECURITY": "none",
        "MAIL_FROM": "caseloop <no-reply@mail.caseloop.test>",
        "DIGEST_SEND_CONCURRENCY": str(CONCURRENCY),
    }
    worker = WorkerProcess(env, tmp_path)
    queue = settings.temporal_task_queue
    worker.start()
    try:
        await worker.polling()
        await remove_digest_schedules(dev_env.client, queue)
        handle = await dev_env.client.start_workflow(
            DailySummaryWorkflow.run,
            DigestInput(at=MORNING, page_size=PAGE_SIZE),
            id=f"daily-summary-drill-{queue}",
            task_queue=queue,
            result_type=DigestCounts,
        )

        async def sent_and_marked() -> bool:
            async with sessions() as session:
                marked = await session.scalar(
                    select(func.count()).where(SentEmail.outcome == "sent")
                )
            return sink.holding.is_set() and marked == PASSED == len(list_messages(sink.directory))

        await until("the first e-mails of the page sent, the next ones held", sent_and_marked)
        worker.kill()  # the page half sent, its next e-mails claimed, none of them handed over
        sink.release.set()
        async with sessions() as session:
            claimed = await session.scalar(
                select(func.count()).where(SentEmail.outcome == "claimed")
            )
            marks = await session.scalar(select(func.count()).select_from(DailySummaryMark))
        assert claimed and claimed <= CONCURRENCY and marks == 0, (
            "killed mid-page: copies in flight, others not started, no day marked done"
        )
        assert len(list_messages(sink.directory)) == PASSED

        worker.start()
        await worker.polling()
        # The dead attempt times out (its heartbeat), a retry sends the page's e-mails nobody
        # claimed, and the dead attempt's claims once they expire (the page's timeout).
        counts = await asyncio.wait_for(handle.result(), PAGE_TIMEOUT.total_seconds() * 2.5)
        await asyncio.sleep(2)  # nothing else comes
        received = list_messages(sink.directory)
        by_recipient = Counter(m.to.rpartition("<")[2].rstrip(">") for m in received)
        assert by_recipient == Counter(addresses), "each partner user exactly one summary"
        assert len({m.message_id for m in received}) == USERS
        # (the days of users a failed attempt sent to, or found sent, are marked: not due)
        assert counts.looked_at == USERS
        assert counts.sent + counts.already_sent + counts.not_due == USERS
        async with sessions() as session:
            marks = await session.scalar(select(func.count()).select_from(DailySummaryMark))
            outcomes = Counter((await session.scalars(select(SentEmail.outcome))).all())
        assert marks == USERS and outcomes == Counter({"sent": USERS})
    finally:
        worker.stop()
        await remove_digest_schedules(dev_env.client, queue)
        await remove_cleanup_schedule(dev_env, queue)
