"""The e-mail of a ladder step that fired (domain/escalation.py): who gets it and what it says,
read from the read model when it is sent, so a task solved meanwhile sends none.

Recipients are always users of the organisation that owns the task (``tasks.owner_org_id``):
a partner never hears of a creditor's task, nor a creditor of a partner's.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from domain.escalation import LADDER_EMAIL, Audience, LadderEmail, StepNotice, idempotency_key
from domain.mail import MAX_RECIPIENTS, Email
from domain.tasks import CATALOGUE, TaskStatus, TaskType, solution_url
from store.models import Organisation, TaskRow, User
from store.recipients import recipients

# A subject is one line of at most 200 characters (``Email.subject``).
_SUBJECT_MAX = 200


class EscalationActivities:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        portal_base_url: str,
        *,
        mail_configured: bool = True,
    ) -> None:
        self._sessions = sessions
        self._portal = portal_base_url
        # Without an SMTP server (no SMTP_HOST) the ladder sends no e-mail: its steps still
        # fire, are recorded and emitted. With one that is down, ``send_email`` waits for it.
        self._mail = mail_configured

    @activity.defn(name=LADDER_EMAIL)
    async def ladder_email(self, notice: StepNotice) -> LadderEmail:
        """The e-mail of ``notice``'s step, or none: the task is no longer open (or no longer
        seen by its owner), or its organisation has no active user to tell, or no SMTP server
        is set."""
        if not self._mail:
            activity.logger.info("no SMTP_HOST: ladder step %s sends no e-mail", notice.step)
            return LadderEmail()
        async with self._sessions() as session:
            row = await session.get(TaskRow, notice.task_id)
            if row is None or row.status != TaskStatus.OPEN.value or not row.case_visible:
                return LadderEmail()
            spec = CATALOGUE[TaskType(row.type)]
            step = next((s for s in spec.ladder if s.name == notice.step), None)
            if step is None:  # the table no longer has the step: nothing to say
                return LadderEmail()
            assignee = await self._assignee(session, row)
            # The assignee, or the admins (decision 0014: the organisation's active users); at
            # most MAX_RECIPIENTS of them, oldest first.
            assigned = (
                [assignee.id] if step.audience is Audience.ASSIGNEE and assignee is not None else []
            )
            to = (await recipients(session, row.owner_org_id, assigned=assigned))[:MAX_RECIPIENTS]
            org = await session.get(Organisation, row.owner_org_id)
        if not to:
            return LadderEmail()
        timezone = org.timezone if org is not None else "UTC"
        deadline = (
            row.deadline.astimezone(ZoneInfo(timezone)).strftime(f"%Y-%m-%d %H:%M ({timezone})")
            if row.deadline
            else "without a deadline"
        )
        subject = step.spec.subject.format(title=" ".join(row.title.split()))
        return LadderEmail(
            email=Email(
                idempotency_key=idempotency_key(row.id, step.name, notice.deadline),
                category=step.spec.category,
                to=to,
                subject=subject[:_SUBJECT_MAX],
                template=step.spec.template,
                context={
                    "task_title": row.title,
                    "task_label": spec.label,
                    "task_description": row.description,
                    "case_reference": row.case_reference,
                    "deadline": deadline,
                    "step": step.name,
                    "assignee_name": (assignee.name or assignee.email) if assignee else None,
                },
                link=solution_url(
                    self._portal,
                    spec,
                    task_id=row.id,
                    case_id=row.case_id,
                    relationship_id=row.relationship_id,
                ),
            )
        )

    @staticmethod
    async def _assignee(session: AsyncSession, row: TaskRow) -> User | None:
        """The task's assignee while active in the owning organisation."""
        if row.assignee_id is None:
            return None
        user = await session.get(User, row.assignee_id)
        if user is None or not user.active or user.org_id != row.owner_org_id:
            return None
        return user
