"""The e-mails of a ladder step that fired (domain/escalation.py): who gets them and what they
say, read from the read model when its ``NoticeWorkflow`` composes them (activities/notices.py,
``compose_email``), so a task solved meanwhile sends none.

Recipients are always users of the organisation that owns the task (``tasks.owner_org_id``):
a partner never hears of a creditor's task, nor a creditor of a partner's. However many they
are, each gets the e-mail (``domain.mail.emails_to`` splits them).
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from domain.escalation import Audience, StepNotice
from domain.mail import Email, emails_to
from domain.tasks import CATALOGUE, TaskStatus, TaskType, solution_url
from store.models import Organisation, TaskRow, User
from store.recipients import recipients

# A subject is one line of at most 200 characters (``Email.subject``).
_SUBJECT_MAX = 200


async def ladder_emails(session: AsyncSession, notice: StepNotice, portal: str) -> list[Email]:
    """The e-mails of ``notice``'s step, or none: the task is no longer open (or no longer seen
    by its owner), the table no longer has the step, or its organisation has no active user."""
    row = await session.get(TaskRow, notice.task_id)
    if row is None or row.status != TaskStatus.OPEN.value or not row.case_visible:
        return []
    spec = CATALOGUE[TaskType(row.type)]
    step = next((s for s in spec.ladder if s.name == notice.step), None)
    if step is None:  # the table no longer has the step: nothing to say
        return []
    assignee = await _assignee(session, row)
    # The assignee, or the admins (decision 0014: the organisation's active users).
    assigned = [assignee.id] if step.audience is Audience.ASSIGNEE and assignee is not None else []
    to = await recipients(session, row.owner_org_id, assigned=assigned)
    org = await session.get(Organisation, row.owner_org_id)
    timezone = org.timezone if org is not None else "UTC"
    deadline = (
        row.deadline.astimezone(ZoneInfo(timezone)).strftime(f"%Y-%m-%d %H:%M ({timezone})")
        if row.deadline
        else "without a deadline"
    )
    subject = step.spec.subject.format(title=" ".join(row.title.split()))
    return emails_to(
        to,
        idempotency_key=notice.idempotency_key,
        category=step.spec.category,
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
            portal,
            spec,
            task_id=row.id,
            case_id=row.case_id,
            relationship_id=row.relationship_id,
        ),
    )


async def _assignee(session: AsyncSession, row: TaskRow) -> User | None:
    """The task's assignee while active in the owning organisation."""
    if row.assignee_id is None:
        return None
    user = await session.get(User, row.assignee_id)
    if user is None or not user.active or user.org_id != row.owner_org_id:
        return None
    return user
