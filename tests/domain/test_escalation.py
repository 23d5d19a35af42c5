"""The escalation ladder's table and its rules, without a server (domain/escalation.py and the
task book's firing, workflows/taskbook.py)."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

from domain.accounts import OrgRef
from domain.calendar import end_of_day
from domain.escalation import (
    KINDS,
    STANDARD,
    WORKING_HOUR,
    Anchor,
    LadderRequest,
    StepKind,
    business_days_before,
    next_working_moment,
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


def test_a_day_before_a_deadline_is_the_working_hour_of_the_business_day_before_it() -> None:
    tuesday = end_of_day(dt.date(2026, 12, 8), TZ)
    monday = dt.datetime(2026, 12, 7, 8, tzinfo=dt.UTC)  # 09:00 CET
    assert business_days_before(tuesday, 1, country="DK", timezone=TZ) == monday
    # Over a weekend: a Monday deadline is warned of on Friday morning.
    next_monday = end_of_day(dt.date(2026, 12, 14), TZ)
    friday = dt.datetime(2026, 12, 11, 8, tzinfo=dt.UTC)
    assert business_days_before(next_monday, 1, country="DK", timezone=TZ) == friday


def moments(
    type: TaskType, deadline: dt.datetime, *, country: str, timezone: str
) -> dict[str, dt.datetime]:
    """The standard ladder's moments of a task due at ``deadline``, as the planner makes them."""
    request = LadderRequest(
        ladder=[step.name for step in STANDARD],
        created=deadline - dt.timedelta(days=14),
        deadline=deadline,
        country=country,
        timezone=timezone,
    )
    return plan_ladder(CATALOGUE[type].ladder, request).moments


def local(moment: dt.datetime, timezone: str) -> tuple[str, str]:
    """A moment as the organisation reads it: its local weekday and time."""
    there = moment.astimezone(ZoneInfo(timezone))
    return there.strftime("%a %Y-%m-%d"), there.strftime("%H:%M")


def test_every_step_comes_at_the_working_hour_in_copenhagen_across_the_end_of_summer_time() -> None:
    # Due at the end of Monday 26 October 2026; summer time ended on Sunday the 25th.
    deadline = end_of_day(dt.date(2026, 10, 26), TZ)
    planned = moments(TaskType.ASSIGN_BANK_ACCOUNT, deadline, country="DK", timezone=TZ)
    assert {name: local(when, TZ) for name, when in planned.items()} == {
        "approaching": ("Fri 2026-10-23", "09:00"),  # CEST: 07:00 UTC
        "breach": ("Tue 2026-10-27", "09:00"),  # CET: 08:00 UTC
        "escalation": ("Wed 2026-10-28", "09:00"),
    }
    assert planned["approaching"] == dt.datetime(2026, 10, 23, 7, tzinfo=dt.UTC)
    assert planned["breach"] == dt.datetime(2026, 10, 27, 8, tzinfo=dt.UTC)
    # The working hour is WORKING_HOUR, wherever it is set.
    assert all(local(when, TZ)[1] == f"{WORKING_HOUR:%H:%M}" for when in planned.values())


def test_a_breach_before_christmas_is_told_on_the_next_danish_business_day() -> None:
    # Due at the end of Thursday 24 December; the 25th and 26th are holidays, then a Sunday.
    deadline = end_of_day(dt.date(2026, 12, 24), TZ)
    planned = moments(TaskType.ASSIGN_BANK_ACCOUNT, deadline, country="DK", timezone=TZ)
    assert local(planned["approaching"], TZ) == ("Wed 2026-12-23", "09:00")
    assert local(planned["breach"], TZ) == ("Mon 2026-12-28", "09:00")
    assert local(planned["escalation"], TZ) == ("Tue 2026-12-29", "09:00")


def test_new_york_steps_skip_thanksgiving_and_the_weekend_and_follow_its_summer_time() -> None:
    ny = "America/New_York"
    # Due at the end of Wednesday 25 November 2026; Thursday the 26th is Thanksgiving.
    deadline = end_of_day(dt.date(2026, 11, 25), ny)
    planned = moments(TaskType.ASSIGN_BANK_ACCOUNT, deadline, country="US", timezone=ny)
    assert {name: local(when, ny) for name, when in planned.items()} == {
        "approaching": ("Tue 2026-11-24", "09:00"),
        "breach": ("Fri 2026-11-27", "09:00"),
        "escalation": ("Mon 2026-11-30", "09:00"),
    }
    assert planned["breach"] == dt.datetime(2026, 11, 27, 14, tzinfo=dt.UTC)  # EST
    # Due at the end of Monday 2 November; US summer time ended on Sunday the 1st.
    deadline = end_of_day(dt.date(2026, 11, 2), ny)
    planned = moments(TaskType.ASSIGN_BANK_ACCOUNT, deadline, country="US", timezone=ny)
    assert planned["approaching"] == dt.datetime(2026, 10, 30, 13, tzinfo=dt.UTC)  # Fri, EDT
    assert planned["breach"] == dt.datetime(2026, 11, 3, 14, tzinfo=dt.UTC)  # Tue, EST


def test_a_breach_comes_at_the_first_working_moment_at_or_after_the_deadline() -> None:
    calendar = {"country": "DK", "timezone": TZ}
    tuesday_0800 = dt.datetime(2026, 12, 8, 7, tzinfo=dt.UTC)
    tuesday_0900 = dt.datetime(2026, 12, 8, 8, tzinfo=dt.UTC)
    assert next_working_moment(tuesday_0800, **calendar) == tuesday_0900
    assert next_working_moment(tuesday_0900, **calendar) == tuesday_0900
    wednesday_0900 = dt.datetime(2026, 12, 9, 8, tzinfo=dt.UTC)
    assert next_working_moment(tuesday_0900 + dt.timedelta(minutes=1), **calendar) == (
        wednesday_0900
    )
    friday_night = end_of_day(dt.date(2026, 12, 11), TZ)
    assert local(next_working_moment(friday_night, **calendar), TZ) == ("Mon 2026-12-14", "09:00")


def test_contract_reminders_come_in_the_morning_of_their_business_days() -> None:
    opened = dt.datetime(2026, 12, 4, 15, tzinfo=dt.UTC)  # a Friday afternoon
    request = LadderRequest(
        ladder=[step.name for step in CATALOGUE[TaskType.SIGN_CONTRACT].ladder],
        created=opened,
        deadline=None,
        country="DK",
        timezone=TZ,
    )
    planned = plan_ladder(CATALOGUE[TaskType.SIGN_CONTRACT].ladder, request).moments
    assert {name: local(when, TZ) for name, when in planned.items()} == {
        "reminder-1": ("Tue 2026-12-08", "09:00"),
        "reminder-2": ("Fri 2026-12-11", "09:00"),
        "reminder-3": ("Fri 2026-12-18", "09:00"),
    }


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
    # The breach's e-mail waits for the next morning; the task is overdue from the deadline.
    morning = dt.datetime(2026, 12, 10, 8, tzinfo=dt.UTC)  # Thursday 09:00 CET
    assert (step.name, when) == ("breach", morning)
    assert book.mark_overdue(new_deadline)
    assert [e.type for e in book.state.events][-1] == "task.overdue"
    assert book.fire_due_steps(new_deadline) == []
    [breach] = book.fire_due_steps(morning)
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
