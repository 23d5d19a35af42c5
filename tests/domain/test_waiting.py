"""What a case waits on (domain/waiting.py): the sides from its open tasks and the implicit-wait
table, the next timer that moves it, and an open case with neither is an orphan."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from domain.chat import ThreadType, chat_task_key
from domain.enums import CaseStatus, Party, SubStatus
from domain.tasks import CATALOGUE, Scope, Task, TaskType
from domain.transitions import FINISHED, SUB_STATUSES
from domain.waiting import (
    IMPLICIT_WAITS,
    Timer,
    TimerKind,
    implicit_wait,
    moment_in_words,
    waiting_lines,
    waiting_of,
)

S, SS = CaseStatus, SubStatus
NOW = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
CREDITOR, PARTNER = uuid.uuid4(), uuid.uuid4()
NAMES = {CREDITOR: "Nordic Creditor A/S", PARTNER: "Acme ApS"}
TZ = "Europe/Copenhagen"
# 3 Dec 23:59 in Copenhagen (UTC+1 in December)
DEADLINE = dt.datetime(2026, 12, 3, 22, 59, tzinfo=dt.UTC)


def task(type: TaskType, owner: uuid.UUID, *, key: str = "k", **more: object) -> Task:
    spec = CATALOGUE[type]
    values: dict[str, object] = {
        "id": f"task-{uuid.uuid4()}",
        "type": type,
        "title": "t",
        "description": "",
        "access_level": spec.access or "Creditor",
        "scope": Scope.CASE,
        "owner_org_id": owner,
        "owner_country": "DK",
        "owner_timezone": TZ,
        "date_created": NOW,
        "key": key,
        "workflow_id": "case-x",
        "deadline": DEADLINE,
    }
    values.update(more)
    return Task.model_validate(values)


SURVEY = Timer(NOW + dt.timedelta(days=30), TimerKind.SURVEY, "monthly survey")


def test_the_implicit_wait_table_names_only_real_statuses_and_sub_statuses() -> None:
    for (status, sub_status), wait in IMPLICIT_WAITS.items():
        assert status not in FINISHED, "a finished case owes nobody a step"
        if sub_status not in (None, "any"):
            assert sub_status in SUB_STATUSES.get(status, ()) or status is S.CREATED
        assert wait.why.startswith("to ")
    assert implicit_wait(S.IN_COLLECTION, SS.NEGOTIATION_IN_PROGRESS) == implicit_wait(
        S.IN_COLLECTION, None
    )
    assert implicit_wait(S.VALIDATED, SS.COLLECTING_QUOTES) is None, "the quotes' tasks wait"
    assert implicit_wait(S.ON_HOLD, SS.PAUSED) is None, "a hold waits through its task"


@pytest.mark.parametrize(
    ("status", "sub_status", "expected"),
    [
        (S.CREATED, SS.PENDING_CONTRACT_SIGNING, ["Creditor"]),
        (S.CREATED, SS.PENDING_BANK_ACCOUNT, ["Creditor"]),
        (S.VALIDATED, None, ["Ops"]),
        (S.IN_COLLECTION, SS.FIRST_REMINDER_SENT, ["Partner"]),
        (S.PAYMENT_PLAN, SS.PLAN_ACTIVE, ["Partner"]),
    ],
)
def test_a_status_that_waits_on_a_side_without_a_task_is_no_orphan(
    status: CaseStatus, sub_status: SubStatus | None, expected: list[str]
) -> None:
    waiting = waiting_of(status, sub_status, [], [], NOW)

    assert waiting.waiting_on == expected
    assert not waiting.orphan


@pytest.mark.parametrize(
    ("status", "sub_status"),
    [
        (S.ON_HOLD, SS.PAUSED),
        (S.ON_HOLD, SS.MORE_INFO_REQUIRED),
        (S.ASSIGNED, SS.PARTNER_REVIEWING),
        (S.VALIDATED, SS.COLLECTING_QUOTES),
        (S.CREATED, SS.VALIDATION_NEEDS_INFO),
    ],
)
def test_a_status_that_waits_through_its_tasks_is_an_orphan_without_one(
    status: CaseStatus, sub_status: SubStatus | None
) -> None:
    orphan = waiting_of(status, sub_status, [], [], NOW)
    held = waiting_of(status, sub_status, [task(TaskType.GENERIC, CREDITOR)], [], NOW)

    assert orphan.orphan and orphan.waiting_on == ["Nobody"]
    assert not held.orphan and held.waiting_on == ["Creditor"]


def test_a_paused_case_is_not_moved_by_its_survey_timer_an_active_one_is() -> None:
    paused = waiting_of(S.ON_HOLD, SS.PAUSED, [], [SURVEY], NOW)
    active = waiting_of(S.IN_COLLECTION, None, [], [SURVEY], NOW)

    assert paused.orphan and paused.next_step is None
    assert active.next_step == SURVEY and active.waiting_on == ["Partner", "Timer"]


def test_the_next_step_is_the_first_timer_still_to_come() -> None:
    past = Timer(NOW - dt.timedelta(minutes=1), TimerKind.TASK_DEADLINE, "gone")
    soon = Timer(NOW + dt.timedelta(days=2), TimerKind.LADDER_STEP, "ReviewNewCase reminder")

    waiting = waiting_of(S.ASSIGNED, SS.PARTNER_REVIEWING, [], [SURVEY, past, soon], NOW)

    assert waiting.next_step == soon
    assert waiting.waiting_on == ["Timer"] and not waiting.orphan


def test_a_finished_case_with_nothing_open_waits_on_nothing_and_is_no_orphan() -> None:
    for status in FINISHED:
        done = waiting_of(status, None, [], [], NOW)
        review = waiting_of(status, None, [task(TaskType.REVIEW_PARTNER, CREDITOR)], [], NOW)

        assert done.waiting_on == [] and not done.orphan
        assert review.waiting_on == ["Creditor"]


def test_the_lines_name_the_parties_and_the_next_timer_in_the_owners_time_zone() -> None:
    chat = task(
        TaskType.NEW_MESSAGE,
        PARTNER,
        key=chat_task_key(ThreadType.INVOICE_CHAT, PARTNER, Party.PARTNER),
    )
    overdue = task(TaskType.GENERIC, CREDITOR, overdue_since=DEADLINE, deadline=DEADLINE)
    waiting = waiting_of(S.IN_COLLECTION, None, [chat, overdue], [SURVEY], NOW)

    lines = waiting_lines(waiting, NAMES, timezone=TZ)

    assert lines == [
        "Waiting for Acme ApS (partner) to reply in Invoice Chat until 3 Dec 23:59 Copenhagen",
        "Waiting for Nordic Creditor A/S (creditor) on Generic, overdue since "
        "3 Dec 23:59 Copenhagen",
        "Waiting for partner to collect the debt",
        "Next step: monthly survey at 31 Dec 10:00 Copenhagen",
    ]
    assert moment_in_words(DEADLINE, "UTC") == "3 Dec 22:59 UTC"


def test_an_orphan_says_so_in_words() -> None:
    lines = waiting_lines(waiting_of(S.ON_HOLD, SS.PAUSED, [], [], NOW), NAMES, timezone=TZ)

    assert lines == [
        "**Waiting on nobody**: no open task, no side that owes a step, no timer to come "
        "(docs/operations.md, 'A case waits on nobody')"
    ]
