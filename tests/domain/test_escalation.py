"""The escalation ladder's table and its rules, without a server (domain/escalation.py and the
task book's firing, workflows/taskbook.py)."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

from domain.accounts import OrgRef
from domain.calendar import end_of_day
from domain.escalation import (
    KINDS,
    Anchor,
    LadderRequest,
    StepKind,
    business_days_before,
    plan_ladder,
)
from domain.tasks import (
    CATALOGUE,
    OutboxEvent,
    ProjectionResult,
    TaskBookState,
    TaskType,
    ladder_request,
)
from domain.webhooks import EVENT_TYPES, CaseParties, audience, bodies
from workflows.taskbook import TaskBook

TEMPLATES = Path(__file__).parents[2] / "mail" / "templates"
TZ = "Europe/Copenhagen"
OWNER = OrgRef(id=uuid.uuid4(), name="Acme", country="DK", timezone=TZ)


def test_every_ladder_comes_in_order_with_one_name_per_step_and_its_templates() -> None:
    for spec in CATALOGUE.values():
        names = [step.name for step in spec.ladder]
        assert len(set(names)) == len(names), spec.type
        for anchor in Anchor:
            days = [step.business_days for step in spec.ladder if step.anchor is anchor]
            assert days == sorted(days), spec.type
        # A ladder is counted from one anchor, so its order is its moments' order.
        assert len({step.anchor for step in spec.ladder}) <= 1, spec.type
    for kind in KINDS.values():
        assert (TEMPLATES / f"{kind.template}.txt").is_file()
        assert (TEMPLATES / f"{kind.template}.html").is_file()


def test_sign_contract_has_at_most_three_follow_ups_and_nothing_else() -> None:
    ladder = CATALOGUE[TaskType.SIGN_CONTRACT].ladder
    assert 1 <= len(ladder) <= 3
    assert {step.kind for step in ladder} == {StepKind.CONTRACT_REMINDER}
    assert all(step.anchor is Anchor.CREATED for step in ladder)


def test_a_day_before_a_deadline_is_the_start_of_the_business_day_before_it() -> None:
    tuesday = end_of_day(dt.date(2026, 12, 8), TZ)
    monday = dt.datetime(2026, 12, 7, tzinfo=dt.UTC) - dt.timedelta(hours=1)  # 00:00 CET
    assert business_days_before(tuesday, 1, country="DK", timezone=TZ) == monday
    # Over a weekend: a Monday deadline is warned of from Friday's start.
    next_monday = end_of_day(dt.date(2026, 12, 14), TZ)
    friday = dt.datetime(2026, 12, 11, tzinfo=dt.UTC) - dt.timedelta(hours=1)
    assert business_days_before(next_monday, 1, country="DK", timezone=TZ) == friday


def book_with_task(now: dt.datetime) -> tuple[TaskBook, str]:
    book = TaskBook(TaskBookState(), workflow_id="creditor-x", touch=lambda: None)
    task = book.raise_task(
        TaskType.ASSIGN_BANK_ACCOUNT,
        key="assign-bank-account",
        now=now,
        owner=OWNER,
        title="Assign",
        description="",
    )
    return book, task.id


def plan(book: TaskBook, task_id: str, now: dt.datetime) -> None:
    """What the projection does: plan the ladder of the task that needs it, and answer."""
    task = book.get(task_id)
    request = ladder_request(task)
    assert request is not None
    result = ProjectionResult(ladders={task_id: plan_ladder(CATALOGUE[task.type].ladder, request)})
    book.given(result, now=now)


def test_each_step_fires_once_per_deadline_and_a_postponement_never_fires_one_in_arrears() -> None:
    created = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)
    book, task_id = book_with_task(created)
    task = book.get(task_id)
    task.deadline = end_of_day(dt.date(2026, 12, 10), TZ)
    plan(book, task_id, created)
    assert book.needs_deadlines() == []
    approaching = business_days_before(task.deadline, 1, country="DK", timezone=TZ)
    assert book.next_step() is not None and book.next_step()[0] == approaching  # type: ignore[index]

    [notice] = book.fire_due_steps(approaching)
    assert (notice.step, notice.deadline) == ("approaching", task.deadline)
    assert book.fire_due_steps(approaching + dt.timedelta(hours=1)) == []  # once
    assert [e.type for e in book.state.events][-1] == "task.deadline_approaching"

    # Moved to a deadline whose "1 bd before" has already come (the end of today): the plan
    # for it leaves that step out, so it does not fire again; the new deadline's breach does.
    now = approaching + dt.timedelta(hours=12)
    new_deadline = end_of_day(dt.date(2026, 12, 9), TZ)
    book.postpone(task, new_deadline, now=now, reason="later", user_id=uuid.uuid4())
    assert book.needs_deadlines() == [task]
    plan(book, task_id, now)
    assert book.fire_due_steps(now) == []
    when, _, step = book.next_step()  # type: ignore[misc]
    assert (step.name, when) == ("breach", new_deadline)
    book.mark_overdue(new_deadline)
    [breach] = book.fire_due_steps(new_deadline)
    assert (breach.step, breach.deadline) == ("breach", new_deadline)
    assert [e.step for e in task.escalations] == ["approaching", "breach"]
    # The breach's event is the overdue flag's, once.
    assert [e.type for e in book.state.events].count("task.overdue") == 1


def test_a_plan_made_for_another_deadline_is_not_kept() -> None:
    created = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)
    book, task_id = book_with_task(created)
    task = book.get(task_id)
    task.deadline = end_of_day(dt.date(2026, 12, 10), TZ)
    request = ladder_request(task)
    assert isinstance(request, LadderRequest)
    stale = plan_ladder(CATALOGUE[task.type].ladder, request)
    task.deadline = end_of_day(dt.date(2026, 12, 17), TZ)  # postponed while it was planned
    book.given(ProjectionResult(ladders={task_id: stale}), now=created)
    assert task.ladder is None and book.needs_deadlines() == [task]


def test_ladder_events_are_webhook_events_for_the_tasks_owner_only_with_their_step() -> None:
    for type in ("task.deadline_approaching", "task.escalated"):
        assert type in EVENT_TYPES
        event = OutboxEvent(
            id="event-1",
            type=type,
            org_id=OWNER.id,
            case_id=uuid.uuid4(),
            occurred_at=dt.datetime(2026, 12, 9, tzinfo=dt.UTC),
            payload={
                "taskId": "task-1",
                "taskType": "AssignBankAccount",
                "step": "escalation",
                "deadline": "2026-12-08T22:59:59+00:00",
            },
        )
        partner = CaseParties(creditor_id=uuid.uuid4(), partner_id=uuid.uuid4())
        assert audience(event, partner, None) == {OWNER.id}
        [(sent_type, _, body)] = list(bodies(event, partner))
        assert sent_type == type
        assert (body["taskId"], body["step"]) == ("task-1", "escalation")
