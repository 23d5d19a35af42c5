"""The task catalogue (one table, SPEC.md "Tasks") and the task payloads.

Workflows raise and resolve tasks from this table, the API renders labels, access, scope, action
and solution links from it, and docs/tasks.md is generated from it.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from uuid import UUID

from domain.base import ApiModel
from domain.escalation import (
    CHAT,
    CONTRACT,
    NONE,
    STANDARD,
    FiredStep,
    Ladder,
    LadderPlan,
    LadderRequest,
    StepNotice,
)


class TaskType(StrEnum):
    REVIEW_NEW_CASE = "ReviewNewCase"
    UPDATE_CASE_STATUS = "UpdateCaseStatus"
    NEW_MESSAGE = "NewMessage"
    REPLY_TO_CHAT = "ReplyToChat"
    PROVIDE_QUOTE = "ProvideQuote"
    SELECT_QUOTE_WINNER = "SelectQuoteWinner"
    REVIEW_PARTNER = "ReviewPartner"
    RECORD_PAYMENT = "RecordPayment"
    CHASE_PAYMENT = "ChasePayment"
    RESPOND_TO_COMPLAINT = "RespondToComplaint"
    CLIENT_INPUT_REQUIRED = "ClientInputRequired"
    FOLLOW_UP_PAUSED_CASE = "FollowUpPausedCase"
    SIGN_CONTRACT = "SignContract"
    MORE_INFO_NEEDED = "MoreInfoNeeded"
    ASSIGN_BANK_ACCOUNT = "AssignBankAccount"
    CASE_VALIDATION_NEEDS_INFO = "CaseValidationNeedsInfo"
    GENERIC = "Generic"


class AccessLevel(StrEnum):
    CREDITOR = "Creditor"
    PARTNER = "Partner"


class Scope(StrEnum):
    CASE = "Case"
    ACCOUNT = "Account"


class TaskStatus(StrEnum):
    OPEN = "Open"
    SOLVED = "Solved"


@dataclass(frozen=True)
class Deadline:
    """A default deadline: business days, or calendar days (``calendar=True``)."""

    days: int
    calendar: bool = False


@dataclass(frozen=True)
class Action:
    """The API call that resolves a task, made from the task alone (issue 12 A8); ``path`` may
    contain ``{caseId}`` and ``{relationshipId}``.

    ``body``: the exact JSON body to send (None: no body); its values may name the fields of
    the task's key, whose pattern ``key`` gives (``complaint:{complaintId}``).
    ``message``: the body also takes the ``message`` a person writes (a chat reply, a complaint
    response), the one free input an action may have. A call whose body needs a person's choice
    (a rating, a quote, an amount, corrected data) is no action: the task's ``action`` is null
    and its solution page does it."""

    method: str
    path: str
    body: dict[str, str] | None = None
    key: str = ""
    message: bool = False

    def key_fields(self, task_key: str) -> dict[str, str] | None:
        """The fields of ``task_key`` the body names, or None if the key is not of ``key``'s
        pattern (then the call cannot be made from the task)."""
        if not self.key:
            return {}
        fields = re.fullmatch(_key_regex(self.key), task_key)
        return fields.groupdict() if fields else None


@functools.cache
def _key_regex(pattern: str) -> str:
    """``chat:{threadType}:{partnerId}:{recipient}`` as a regex with a group per field (the last one
    takes the rest of the key)."""
    parts = re.split(r"\{(\w+)\}", pattern)
    regex = ""
    for i, part in enumerate(parts):
        if i % 2 == 0:
            regex += re.escape(part)
        else:
            regex += f"(?P<{part}>.*)" if i == len(parts) - 2 else f"(?P<{part}>[^:]*)"
    return regex


@dataclass(frozen=True)
class TaskSpec:
    type: TaskType
    label: str
    access: AccessLevel | None  # None: either party (Generic; the creator's side)
    scope: Scope
    deadline: Deadline | None
    resolves_when: str
    action: Action | None
    solution_path: str  # below PORTAL_BASE_URL; may contain {caseId} and {taskId}
    mark_as_done: bool = False  # the owner may resolve it by hand
    outlives_case: bool = False  # stays open when the case closes (the workflow waits for it)
    # For chat tasks of a relationship chat (no case): the call and page that resolve them.
    relationship_action: Action | None = None
    relationship_solution_path: str | None = None  # may contain {relationshipId}
    # A task of a case's quote round (a lead): its ``leadId`` is the case's id, the lead
    # caseloop's portal shows under /leads/{caseId}.
    on_lead: bool = False
    # Its escalation ladder (domain/escalation.py): reminders, breach and escalation e-mails.
    ladder: Ladder = STANDARD


CASE_CHAT = "/api/cases/{caseId}/chats"
# A chat task is answered in its thread (its key: ``domain.chat.chat_task_key``).
REPLY_IN_CHAT = Action(
    "POST",
    CASE_CHAT,
    body={"threadType": "{threadType}", "partnerId": "{partnerId}"},
    key="chat:{threadType}:{partnerId}:{recipient}",
    message=True,
)
# A hold's task is answered in the case's Invoice Chat (with the partner working the case).
ANSWER_IN_INVOICE_CHAT = Action(
    "POST", CASE_CHAT, body={"threadType": "Invoice Chat"}, message=True
)
REPLY_IN_RELATIONSHIP = Action("POST", "/api/relationships/{relationshipId}/chats", message=True)
RELATIONSHIP_CHAT = "/relationships/{relationshipId}/chat"
C, P = AccessLevel.CREDITOR, AccessLevel.PARTNER
BD = Deadline

# fmt: off
CATALOGUE: dict[TaskType, TaskSpec] = {spec.type: spec for spec in (
    TaskSpec(TaskType.REVIEW_NEW_CASE, "Review New Case", P, Scope.CASE, BD(2),
             "partner accepts or rejects the case (or offers custom terms)",
             Action("POST", "/api/cases/{caseId}/accept"), "/cases/{caseId}/review"),
    TaskSpec(TaskType.UPDATE_CASE_STATUS, "Update Case Status", P, Scope.CASE, BD(5),
             "partner submits the monthly survey, or the case stops being active",
             None, "/cases/{caseId}/survey"),  # the survey's outcome is the partner's choice
    TaskSpec(TaskType.NEW_MESSAGE, "New Message", P, Scope.CASE, BD(2),
             "partner replies in that thread, or nightly cleanup", REPLY_IN_CHAT,
             "/cases/{caseId}/chat", relationship_action=REPLY_IN_RELATIONSHIP,
             relationship_solution_path=RELATIONSHIP_CHAT, ladder=CHAT),
    TaskSpec(TaskType.REPLY_TO_CHAT, "Reply to chat", C, Scope.CASE, BD(2),
             "creditor replies in that thread, or nightly cleanup", REPLY_IN_CHAT,
             "/cases/{caseId}/chat", relationship_action=REPLY_IN_RELATIONSHIP,
             relationship_solution_path=RELATIONSHIP_CHAT, ladder=CHAT),
    TaskSpec(TaskType.PROVIDE_QUOTE, "Provide Quote", P, Scope.CASE, BD(5),
             "partner submits or declines a quote, or the quote round ends",
             None, "/leads/{caseId}/quote", on_lead=True),  # the fee, or a reason to decline
    TaskSpec(TaskType.SELECT_QUOTE_WINNER, "Select Quote Winner", C, Scope.CASE,
             BD(14, calendar=True),
             "creditor picks a quote; reminders at 7 and 14 days, the quotes expire at 21",
             None, "/leads/{caseId}/quotes", on_lead=True,  # which quote wins is a choice
             ladder=NONE),  # the quote round reminds at 7 and 14 days itself
    TaskSpec(TaskType.REVIEW_PARTNER, "Review Partner", C, Scope.CASE, BD(10),
             "creditor submits a 0-10 rating", None,  # the rating is the creditor's choice
             "/cases/{caseId}/review-partner", outlives_case=True),
    TaskSpec(TaskType.RECORD_PAYMENT, "Invoice & collect payment from client", P, Scope.CASE,
             BD(10), "partner records the commission payment", None,  # the amount and day paid
             "/cases/{caseId}/payments", outlives_case=True),
    TaskSpec(TaskType.CHASE_PAYMENT, "Chase Payment & Start Collection", P, Scope.CASE, BD(10),
             "the commission payment is recorded", None, "/cases/{caseId}/payments",
             outlives_case=True),
    TaskSpec(TaskType.RESPOND_TO_COMPLAINT, "Respond to complaint", P, Scope.CASE,
             BD(10, calendar=True), "partner responds through the complaint flow",
             Action("POST", "/api/cases/{caseId}/complaints/responses",
                    body={"complaintId": "{complaintId}"}, key="complaint:{complaintId}",
                    message=True),
             "/cases/{caseId}/complaint", outlives_case=True),
    TaskSpec(TaskType.CLIENT_INPUT_REQUIRED, "Client input required", C, Scope.CASE, BD(14),
             "case resumed or closed, or creditor replies in chat", ANSWER_IN_INVOICE_CHAT,
             "/cases/{caseId}/chat"),
    TaskSpec(TaskType.FOLLOW_UP_PAUSED_CASE, "Follow up on paused case", P, Scope.CASE, BD(14),
             "case resumed or closed", Action("POST", "/api/cases/{caseId}/resume"),
             "/cases/{caseId}"),
    TaskSpec(TaskType.SIGN_CONTRACT, "Sign Contract", C, Scope.ACCOUNT, BD(7),
             "contract signed; one task covers all waiting cases",
             Action("POST", "/api/account/contract/sign"), "/account/contract",
             ladder=CONTRACT),
    TaskSpec(TaskType.MORE_INFO_NEEDED, "More Info Needed", C, Scope.CASE, BD(5),
             "case leaves Needs Additional Details, or creditor marks it done",
             ANSWER_IN_INVOICE_CHAT,
             "/cases/{caseId}/chat", mark_as_done=True),
    TaskSpec(TaskType.ASSIGN_BANK_ACCOUNT, "Assign Bank Account", C, Scope.ACCOUNT, BD(7),
             "every case has a bank account", None, "/account/bank-accounts"),
    TaskSpec(TaskType.CASE_VALIDATION_NEEDS_INFO, "Case validation needs info", C, Scope.CASE,
             BD(5), "case data corrected and revalidated", None,  # the corrected data
             "/cases/{caseId}/edit"),
    TaskSpec(TaskType.GENERIC, "Generic", None, Scope.CASE, None,
             "closed by hand", None, "/tasks/{taskId}", outlives_case=True),
)}
# fmt: on


def solution_url(
    base: str,
    spec: TaskSpec,
    *,
    task_id: str,
    case_id: UUID | None,
    relationship_id: UUID | None = None,
) -> str:
    """The absolute link that resolves a task in the portal."""
    template = spec.solution_path
    if relationship_id is not None and spec.relationship_solution_path:
        template = spec.relationship_solution_path
    path = template.format(caseId=case_id or "", taskId=task_id, relationshipId=relationship_id)
    return base.rstrip("/") + path


def action_of(
    spec: TaskSpec, case_id: UUID | None, relationship_id: UUID | None = None, key: str = ""
) -> dict[str, Any] | None:
    """A task's ``action``: ``method``, ``path``, the exact ``body`` (None: none) and whether
    the body takes a ``message`` too (``needsMessage``), from the catalogue and the task's
    case, relationship and key."""
    action = spec.action
    if relationship_id is not None:
        action = spec.relationship_action
    fields = action.key_fields(key) if action else None
    if action is None or fields is None:
        return None
    return {
        "method": action.method,
        "path": action.path.format(caseId=case_id, relationshipId=relationship_id),
        "body": None
        if action.body is None
        else {name: value.format_map(fields) for name, value in action.body.items()},
        "needs_message": action.message,
    }


def task_id(owner_workflow_id: str, key: str) -> str:
    """Deterministic task id, so replays and retried projections address the same task."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"caseloop:{owner_workflow_id}:{key}"))


class ResolvedBy(ApiModel):
    kind: str  # "system" or "user"
    user_id: UUID | None = None
    reason: str


class Task(ApiModel):
    """One task as a workflow keeps it and the read model stores it."""

    id: str
    type: TaskType
    title: str
    description: str
    status: TaskStatus = TaskStatus.OPEN
    access_level: AccessLevel
    scope: Scope
    owner_org_id: UUID  # the organisation that sees and works the task
    owner_country: str  # its calendar, for business-day deadlines
    owner_timezone: str
    case_id: UUID | None = None
    relationship_id: UUID | None = None  # a relationship chat's task (then no case)
    deadline: dt.datetime | None = None
    original_deadline: dt.datetime | None = None
    date_created: dt.datetime
    date_solved: dt.datetime | None = None
    overdue_since: dt.datetime | None = None
    assignee_id: UUID | None = None
    resolved_by: ResolvedBy | None = None
    # The ladder's steps that fired, in order (shown as ``escalations``), and its plan: the
    # moments of the steps still to come for the current deadline (workflow state only).
    escalations: list[FiredStep] = []
    ladder: LadderPlan | None = None
    key: str  # the situation the task stands for, unique among a workflow's open tasks
    workflow_id: str
    version: int = 0


def needs_default_deadline(task: Task) -> bool:
    """An open task without a deadline whose type has a default one (``CATALOGUE``)."""
    return (
        task.deadline is None
        and task.status is TaskStatus.OPEN
        and CATALOGUE[task.type].deadline is not None
    )


def needs_ladder(task: Task) -> bool:
    """An open task of a type with a ladder whose plan is missing or was made for another
    deadline (it was postponed), once it has the deadline it is going to have."""
    return (
        task.status is TaskStatus.OPEN
        and bool(CATALOGUE[task.type].ladder)
        and not needs_default_deadline(task)
        and (task.ladder is None or task.ladder.deadline != task.deadline)
    )


def ladder_request(task: Task) -> LadderRequest | None:
    """What the plan of a task that needs one is computed from, else None."""
    if not needs_ladder(task):
        return None
    return LadderRequest(
        ladder=[step.name for step in CATALOGUE[task.type].ladder],
        created=task.date_created,
        deadline=task.deadline,
        country=task.owner_country,
        timezone=task.owner_timezone,
    )


class DeadlineRequest(ApiModel):
    """What a task's default deadline is computed from (``activities.deadlines.deadline_of``)."""

    start: dt.datetime
    days: int
    calendar: bool = False
    country: str
    timezone: str

    @classmethod
    def of(cls, task: Task) -> DeadlineRequest | None:
        """The request for a task that still needs its default deadline, else None."""
        rule = CATALOGUE[task.type].deadline
        if rule is None or not needs_default_deadline(task):
            return None
        return cls(
            start=task.date_created,
            days=rule.days,
            calendar=rule.calendar,
            country=task.owner_country,
            timezone=task.owner_timezone,
        )


class ProjectionResult(ApiModel):
    """What a projection activity answers: the default deadlines it gave the tasks it wrote
    that needed one, by task id. Recorded in history with the activity's result, so a later
    calendar never moves a deadline once given (docs/decisions/0005). And how many of the
    outbox items it carried it delivered to other workflows, by the projection's field that
    carried them (the first ones, in order; the workflow's outbox sends the rest)."""

    deadlines: dict[str, dt.datetime] = {}
    sent: dict[str, int] = {}
    # The ladder plans it made for the tasks it wrote that needed one (after their deadline),
    # by task id: recorded like the deadlines, so a calendar update never moves a step.
    ladders: dict[str, LadderPlan] = {}


class OutboxEvent(ApiModel):
    """An event for webhooks, written to the outbox with the projection that caused it."""

    id: str
    type: str  # task.created, task.solved, task.overdue, case.status.changed, ...
    org_id: UUID | None = None
    case_id: UUID | None = None
    occurred_at: dt.datetime
    payload: dict[str, object] = {}


class TaskBookState(ApiModel):
    """The tasks a workflow owns: open ones, plus solved ones until they are projected."""

    tasks: list[Task] = []
    dirty: list[str] = []  # ids changed since the last projection
    events: list[OutboxEvent] = []  # not yet projected
    event_seq: int = 0
    key_seq: dict[str, int] = {}  # per-key counters so a re-raised task gets a new id
    notices: list[StepNotice] = []  # ladder steps whose e-mail is still to send, in order


class PostponeTaskInput(ApiModel):
    task_id: str
    deadline: dt.datetime
    reason: str
    user_id: UUID


class AssignTaskInput(ApiModel):
    task_id: str
    assignee_id: UUID | None
    user_id: UUID


class CloseTaskInput(ApiModel):
    """Resolve by hand: closing a Generic task, or "mark as done" where the catalogue allows."""

    task_id: str
    user_id: UUID
    reason: str | None = None
