"""The ``compose_email`` activity: a notice (domain/notices.py) becomes e-mails, read from the
read model when it is due: who gets it, what it lists and the portal page it links to.

Recipients are active users only. A partner's messages go to the users the creditor assigned
the case's (or relationship's) open tasks to, where any is assigned, else to every active user
of the creditor organisation: the case has no owner of its own, and the user a creditor gives
its tasks to is the one who works it. The digest goes to every active user of the creditor.
A ladder step's e-mail is activities/escalation.py's. Recipients come in e-mails of at most
``MAX_RECIPIENTS``, all with the notice's idempotency key (``domain.mail.emails_to``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.escalation import ladder_emails
from domain.chat import ChatRole, ThreadType, chat_task_key
from domain.enums import Party
from domain.escalation import StepNotice
from domain.mail import Email, MailCategory, emails_to
from domain.notices import (
    COMPOSE_EMAIL,
    BankAccountDigestNotice,
    NoticeInput,
    PartnerWroteNotice,
)
from domain.tasks import CATALOGUE, TaskStatus, TaskType, solution_url
from store.models import Case, ChatMessageRow, Organisation, Relationship, TaskRow, User
from store.recipients import recipients

TIME_FORMAT = "%Y-%m-%d %H:%M UTC"


class NoticeActivities:
    """``send`` False: no SMTP server is configured (``SMTP_HOST`` unset), so the notices'
    e-mails are not composed at all: a deployment without e-mail does not pile up e-mails that
    wait for a server forever (an e-mail a rule has composed waits for SMTP as long as it takes:
    activities/mail.py)."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], portal_base_url: str, *, send: bool = True
    ) -> None:
        self._sessions = sessions
        self._portal = portal_base_url.rstrip("/")
        self._send = send

    @activity.defn(name=COMPOSE_EMAIL)
    async def compose_email(self, input: NoticeInput) -> list[Email]:
        """The e-mails of ``input.notice``; none when there is nobody to tell or nothing left
        to tell."""
        notice = input.notice
        if not self._send:
            activity.logger.info("no SMTP_HOST: notice %s is not e-mailed", notice.kind)
            return []
        async with self._sessions() as session:
            if isinstance(notice, PartnerWroteNotice):
                return await self._partner_wrote(session, notice)
            if isinstance(notice, StepNotice):
                return await ladder_emails(session, notice, self._portal)
            return await self._bank_account_digest(session, notice)

    async def _partner_wrote(
        self, session: AsyncSession, notice: PartnerWroteNotice
    ) -> list[Email]:
        owner = (
            ChatMessageRow.case_id == notice.case_id
            if notice.case_id is not None
            else ChatMessageRow.relationship_id == notice.relationship_id
        )
        messages = list(
            await session.scalars(
                select(ChatMessageRow)
                .where(
                    owner,
                    ChatMessageRow.role == ChatRole.PARTNER.value,
                    ChatMessageRow.seq >= notice.first_seq,
                    ChatMessageRow.seq <= notice.last_seq,
                )
                .order_by(ChatMessageRow.seq)
            )
        )
        if not messages:
            return []
        last = messages[-1]
        partner = await session.get(Organisation, last.partner_id)
        partner_name = partner.name if partner else "Your collection partner"
        authors = {
            user.id: user.name
            for user in await session.scalars(
                select(User).where(User.id.in_({m.user_id for m in messages if m.user_id}))
            )
        }
        context: dict[str, Any] = {
            "partner_name": partner_name,
            "messages": [
                {
                    "sent_at": message.created_at.strftime(TIME_FORMAT),
                    "author": (authors.get(message.user_id) if message.user_id else None)
                    or partner_name,
                    "text": message.body,
                }
                for message in messages
            ],
        }
        if notice.case_id is not None:
            case = await session.get(Case, notice.case_id)
            if case is None:
                return []
            creditor_id, where = case.creditor_id, TaskRow.case_id == case.id
            context |= {"case_reference": case.case_number, "debtor_name": case.debtor_name}
            subject = f"{partner_name} wrote in case {case.case_number}"
            page = f"{self._portal}/cases/{case.id}/chat"
        else:
            pair = await session.get(Relationship, notice.relationship_id)
            if pair is None:
                return []
            creditor_id, where = pair.creditor_id, TaskRow.relationship_id == pair.id
            context |= {"case_reference": None, "debtor_name": None}
            subject = f"{partner_name} wrote in your general chat"
            page = f"{self._portal}/relationships/{pair.id}/chat"
        open_tasks = list(
            await session.scalars(
                select(TaskRow).where(
                    where,
                    TaskRow.owner_org_id == creditor_id,
                    TaskRow.status == TaskStatus.OPEN.value,
                )
            )
        )
        # The ReplyToChat task of the thread the burst ended in, else any open one of the
        # case's (or relationship's), else its chat page.
        replies = [t for t in open_tasks if t.type == TaskType.REPLY_TO_CHAT.value]
        last_thread = chat_task_key(ThreadType(last.thread_type), last.partner_id, Party.CREDITOR)
        reply = next((t for t in replies if t.key == last_thread), replies[0] if replies else None)
        link = (
            solution_url(
                self._portal,
                CATALOGUE[TaskType.REPLY_TO_CHAT],
                task_id=reply.id,
                case_id=reply.case_id,
                relationship_id=reply.relationship_id,
            )
            if reply is not None
            else page
        )
        assigned = {t.assignee_id for t in open_tasks if t.assignee_id is not None}
        return emails_to(
            await recipients(session, creditor_id, assigned=assigned),
            idempotency_key=notice.idempotency_key,
            category=MailCategory.PARTNER_MESSAGES,
            subject=subject,
            template="partner_wrote",
            context=context,
            link=link,
        )

    async def _bank_account_digest(
        self, session: AsyncSession, notice: BankAccountDigestNotice
    ) -> list[Email]:
        cases = list(
            await session.scalars(
                select(Case)
                .where(Case.id.in_(notice.cases), Case.bank_account_id.is_(None))
                .order_by(Case.created_at, Case.id)
            )
        )
        task = await session.scalar(
            select(TaskRow).where(
                TaskRow.owner_org_id == notice.creditor_id,
                TaskRow.type == TaskType.ASSIGN_BANK_ACCOUNT.value,
                TaskRow.status == TaskStatus.OPEN.value,
            )
        )
        if not cases or task is None:
            return []  # every case got one meanwhile
        count = len(cases)
        return emails_to(
            await recipients(session, notice.creditor_id),
            idempotency_key=notice.idempotency_key,
            category=MailCategory.BANK_ACCOUNT_DIGEST,
            subject=f"{count} case{'s' if count != 1 else ''} need{'' if count != 1 else 's'} "
            "a bank account",
            template="bank_account_digest",
            context={
                "cases": [
                    {
                        "case_number": case.case_number,
                        "reference": case.creditor_reference,
                        "debtor_name": case.debtor_name,
                        "created_at": case.created_at.strftime(TIME_FORMAT),
                    }
                    for case in cases
                ]
            },
            link=solution_url(
                self._portal, CATALOGUE[TaskType.ASSIGN_BANK_ACCOUNT], task_id=task.id, case_id=None
            ),
        )
