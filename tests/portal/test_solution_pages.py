"""Every task type's solutionUrl opens, for the task's owner, the page where it is solved: the
page answers 200 and shows the form (or button) that solves it. Walks the whole catalogue."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.projection import write_tasks
from api.routes.tasks import task_view
from domain.enums import CaseStatus, SubStatus
from domain.tasks import CATALOGUE, AccessLevel, Scope, TaskType
from settings import Settings
from store.db import transaction
from store.models import Case, CaseInvitation
from store.tasks import get_task
from tests.portal.support import sign_in, with_password
from tests.support import SEED_TIME, Actor, add_case, make_task


@dataclass(frozen=True)
class Situation:
    """The case a task of this type stands in, and what its solution page must show."""

    status: CaseStatus
    sub_status: SubStatus | None
    marker: str
    invited: bool = False  # the partner is asked to quote, not assigned


OPEN_FORM = '<details class="case-form" id="form-{}" open>'
SITUATIONS: dict[TaskType, Situation] = {
    TaskType.REVIEW_NEW_CASE: Situation(
        CaseStatus.ASSIGNED, SubStatus.PARTNER_REVIEWING, OPEN_FORM.format("accept")
    ),
    TaskType.UPDATE_CASE_STATUS: Situation(
        CaseStatus.IN_COLLECTION, None, OPEN_FORM.format("survey")
    ),
    TaskType.PROVIDE_QUOTE: Situation(
        CaseStatus.VALIDATED, SubStatus.COLLECTING_QUOTES, OPEN_FORM.format("quote"), invited=True
    ),
    TaskType.SELECT_QUOTE_WINNER: Situation(
        CaseStatus.VALIDATED,
        SubStatus.PENDING_QUOTE_SELECTION,
        '<details class="case-form" id="form-quote-selection" open>',
    ),
    TaskType.REVIEW_PARTNER: Situation(CaseStatus.CLOSED, None, OPEN_FORM.format("partner-review")),
    TaskType.RECORD_PAYMENT: Situation(
        CaseStatus.RESOLVED, None, OPEN_FORM.format("commission-payment")
    ),
    TaskType.CHASE_PAYMENT: Situation(
        CaseStatus.RESOLVED, None, OPEN_FORM.format("commission-payment")
    ),
    TaskType.RESPOND_TO_COMPLAINT: Situation(
        CaseStatus.IN_COLLECTION,
        None,
        '<details class="case-form" id="form-complaint-response" open>',
    ),
    TaskType.FOLLOW_UP_PAUSED_CASE: Situation(
        CaseStatus.ON_HOLD, SubStatus.PAUSED, 'id="form-resume"'
    ),
    TaskType.SIGN_CONTRACT: Situation(
        CaseStatus.CREATED, SubStatus.PENDING_CONTRACT_SIGNING, "Sign the contract</button>"
    ),
    TaskType.ASSIGN_BANK_ACCOUNT: Situation(
        CaseStatus.CREATED, SubStatus.PENDING_BANK_ACCOUNT, 'name="iban"'
    ),
    TaskType.CASE_VALIDATION_NEEDS_INFO: Situation(
        CaseStatus.CREATED, SubStatus.VALIDATION_NEEDS_INFO, OPEN_FORM.format("correct")
    ),
    TaskType.GENERIC: Situation(CaseStatus.IN_COLLECTION, None, "Close task</button>"),
}
CHAT_PAGES = {
    TaskType.NEW_MESSAGE,
    TaskType.REPLY_TO_CHAT,
    TaskType.CLIENT_INPUT_REQUIRED,
    TaskType.MORE_INFO_NEEDED,
}


async def task_in_its_situation(
    task_type: TaskType,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
) -> tuple[Actor, str, str]:
    """A task of ``task_type`` on a case in the state it stands for, written into the read
    model: (its owner, its solutionUrl, what its solution page must show)."""
    spec = CATALOGUE[task_type]
    situation = SITUATIONS.get(task_type) or Situation(
        CaseStatus.IN_COLLECTION, None, 'enctype="multipart/form-data"'
    )
    side = spec.access or AccessLevel.CREDITOR
    owner = creditor if side is AccessLevel.CREDITOR else partner
    case_id = await add_case(sessions, creditor, partner=None if situation.invited else partner)
    async with transaction(sessions) as session:
        await session.execute(
            update(Case)
            .where(Case.id == case_id)
            .values(
                status=situation.status.value,
                sub_status=situation.sub_status.value if situation.sub_status else None,
                bank_account_id=None,
            )
        )
        if situation.invited:
            session.add(CaseInvitation(case_id=case_id, partner_id=partner.org_id))
    task = make_task(owner, access=side, case_id=case_id, deadline=SEED_TIME).model_copy(
        update={"type": task_type}
    )
    if spec.scope is Scope.ACCOUNT:
        task = task.model_copy(update={"case_id": None, "scope": Scope.ACCOUNT})
    async with transaction(sessions) as session:
        await write_tasks(session, [task])
        record = await get_task(session=session, principal=owner.principal, task_id=task.id)
    assert record is not None
    url = task_view(record, settings).solution_url
    return owner, url, situation.marker


def test_the_walk_covers_the_whole_catalogue() -> None:
    assert set(SITUATIONS) | CHAT_PAGES == set(CATALOGUE)


WALK = [*SITUATIONS, *sorted(CHAT_PAGES)]


@pytest.mark.parametrize("task_type", WALK)
async def test_every_task_types_solution_url_opens_the_page_that_solves_it(
    task_type: TaskType,
    portal: httpx.AsyncClient,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
) -> None:
    owner, url, marker = await task_in_its_situation(
        task_type, settings, sessions, creditor, partner
    )
    await sign_in(portal, await with_password(sessions, owner))

    page = await portal.get("/portal" + urlsplit(url).path)

    assert page.status_code == 200, (task_type, url, page.text[:300])
    assert marker in page.text, (task_type, url)
