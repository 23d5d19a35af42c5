"""Webhooks: the events a subscriber may ask for, who may see each, the body sent for each, the
delivery schedule, and the API's shapes (Debitura's ``WebhookDto``, ``WebhookEventDto`` and
their requests; docs/api.md "Webhooks"; docs/decisions/0013-webhook-delivery.md).

Every rule of what a subscriber receives lives here once: the fan-out (``store.webhooks``)
asks ``audience`` who may see an event and ``bodies`` what each receives, the delivery
activity (``activities.webhooks``) asks ``retry_delay`` when to try again.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from pydantic import AfterValidator, Field, StrictBool

from domain.base import ApiModel
from domain.enums import CaseStatus, Lifecycle, SubStatus
from domain.lifecycle import lifecycle_of
from domain.tasks import OutboxEvent


class WebhookEvent(StrEnum):
    """What a subscription may name in ``events``, in the order docs/api.md lists them."""

    CASE_CREATED = "case.created"
    CASE_STATUS_CHANGED = "case.status.changed"
    CASE_CLOSED = "case.closed"
    TASK_CREATED = "task.created"
    TASK_SOLVED = "task.solved"
    TASK_OVERDUE = "task.overdue"
    # The escalation ladder (domain/escalation.py): a step before the deadline, and after it.
    TASK_DEADLINE_APPROACHING = "task.deadline_approaching"
    TASK_ESCALATED = "task.escalated"
    CHAT_CREATED = "chat.created"


CASE_CREATED = WebhookEvent.CASE_CREATED.value
CASE_STATUS_CHANGED = WebhookEvent.CASE_STATUS_CHANGED.value
CASE_CLOSED = WebhookEvent.CASE_CLOSED.value
CHAT_CREATED = WebhookEvent.CHAT_CREATED.value
EVENT_TYPES = tuple(event.value for event in WebhookEvent)
# The body of ``POST /api/webhooks/{id}/test``.
TEST_EVENT = "webhook.test"

# Attempts per delivery, and the wait after each failed one (Debitura's schedule: at once, then
# +1, +2, +4, +8, +16, +30 and +30 minutes), each stretched or shortened by up to JITTER.
MAX_ATTEMPTS = 8
RETRY_DELAYS = tuple(dt.timedelta(minutes=m) for m in (1, 2, 4, 8, 16, 30, 30))
JITTER = 0.1
# Consecutive failed attempts (over all the subscription's deliveries) that disable it.
MAX_CONSECUTIVE_FAILURES = 8
# How long one attempt may take, connection included.
ATTEMPT_TIMEOUT_SECONDS = 10.0
# The status that disables a subscription at once: the receiver says it is gone for good.
GONE = 410

# The namespace of delivery ids derived from (subscription, event): a projection that runs
# again writes the same ids, so never a delivery twice.
_DELIVERY_IDS = uuid.UUID("6f1c2a52-4d0b-4a57-9b9e-1f0c7d0e9b21")


def delivery_id(subscription_id: UUID, event_id: str) -> str:
    """The stable id of one event's delivery to one subscription (its ``webhook-id``)."""
    return str(uuid.uuid5(_DELIVERY_IDS, f"{subscription_id}/{event_id}"))


def retry_delay(attempts: int, jitter: float) -> dt.timedelta | None:
    """The wait after ``attempts`` failed attempts (None: it was the last one); ``jitter`` in
    [-1, 1] picks where in the ±JITTER band it falls (the activity draws it; workflows never)."""
    if attempts >= MAX_ATTEMPTS:
        return None
    return RETRY_DELAYS[attempts - 1] * (1 + JITTER * max(-1.0, min(1.0, jitter)))


def disabled_reason(status_code: int | None, failures: int) -> str | None:
    """Why an attempt's outcome disables its subscription (None: it stays active)."""
    if status_code == GONE:
        return "The endpoint answered 410 Gone; re-enable with PATCH isActive=true."
    if failures >= MAX_CONSECUTIVE_FAILURES:
        return (
            f"{failures} consecutive delivery attempts failed; re-enable with PATCH isActive=true."
        )
    return None


# -- who sees what ------------------------------------------------------------------------------
@dataclass(frozen=True)
class CaseParties:
    """What the read model holds of a case an event is about: who sees it."""

    creditor_id: UUID
    partner_id: UUID | None
    close_code: str | None = None


def _uuid(value: object) -> UUID | None:
    try:
        return UUID(str(value)) if value else None
    except ValueError:
        return None


def candidate_orgs(event: OutboxEvent) -> set[UUID]:
    """Organisations that may see ``event`` as far as the event itself tells (the case's
    partner comes from the read model: ``audience``)."""
    orgs = {event.org_id} if event.org_id else set()
    if event.type == CHAT_CREATED:
        partner = _uuid(event.payload.get("partnerId"))
        orgs |= {partner} if partner else set()
    return orgs


def audience(
    event: OutboxEvent, case: CaseParties | None, relationship_creditor: UUID | None
) -> set[UUID]:
    """The organisations allowed to see ``event``: a case event its case's creditor and
    assigned partner; a task event the organisation whose task it is; a chat message the two
    organisations of its thread (the case's creditor, or the relationship's, and the thread's
    partner)."""
    if event.type.startswith("case."):
        if case is None:
            return set()
        return {case.creditor_id} | ({case.partner_id} if case.partner_id else set())
    if event.type.startswith("task."):
        return {event.org_id} if event.org_id else set()
    if event.type == CHAT_CREATED:
        orgs = candidate_orgs(event)
        if case is not None:
            orgs.add(case.creditor_id)
        if relationship_creditor is not None:
            orgs.add(relationship_creditor)
        return orgs
    return set()


# -- what is sent --------------------------------------------------------------------------------
def _timestamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _lifecycle(status: object, sub_status: object) -> str | None:
    if not status:
        return None
    try:
        sub = SubStatus(str(sub_status)) if sub_status else None
        return lifecycle_of(CaseStatus(str(status)), sub).value
    except ValueError:
        return None


def bodies(
    event: OutboxEvent, case: CaseParties | None
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """The webhook events an outbox event makes, as ``(event type, event id, body)``: the body
    holds ids, statuses and types only (no names, amounts or message text), so it shows no
    subscriber more than the API shows it. A status change into the Closed lifecycle also makes
    a ``case.closed`` (its id the change's, suffixed)."""
    payload = event.payload
    envelope: dict[str, Any] = {
        "event": event.type,
        "eventId": event.id,
        "timestamp": _timestamp(event.occurred_at),
        "caseId": str(event.case_id) if event.case_id else None,
    }
    if event.type in (CASE_CREATED, CASE_STATUS_CHANGED):
        old_lifecycle = _lifecycle(payload.get("oldStatus"), payload.get("oldSubStatus"))
        new_lifecycle = _lifecycle(payload.get("newStatus"), payload.get("newSubStatus"))
        body = {
            **envelope,
            "caseNumber": payload.get("caseNumber"),
            "oldStatus": payload.get("oldStatus"),
            "newStatus": payload.get("newStatus"),
            "oldSubStatus": payload.get("oldSubStatus"),
            "newSubStatus": payload.get("newSubStatus"),
            "oldLifecycle": old_lifecycle,
            "newLifecycle": new_lifecycle,
            "sequence": payload.get("sequence"),
        }
        yield event.type, event.id, body
        closed = Lifecycle.CLOSED.value
        if new_lifecycle == closed and old_lifecycle != closed:
            closed_id = f"{event.id}/closed"
            yield (
                CASE_CLOSED,
                closed_id,
                {
                    **body,
                    "event": CASE_CLOSED,
                    "eventId": closed_id,
                    "closeCode": case.close_code if case else None,
                },
            )
    elif event.type.startswith("task."):
        body = {
            **envelope,
            "taskId": payload.get("taskId"),
            "taskType": payload.get("taskType"),
        }
        if "reason" in payload:
            body["reason"] = payload.get("reason")
        for name in ("step", "deadline"):  # ladder events: which step, for which deadline
            if name in payload:
                body[name] = payload.get(name)
        yield event.type, event.id, body
    elif event.type == CHAT_CREATED:
        yield (
            event.type,
            event.id,
            {
                **envelope,
                "messageId": payload.get("messageId"),
                "threadType": payload.get("threadType"),
                "partnerId": payload.get("partnerId"),
                "relationshipId": payload.get("relationshipId"),
                "role": payload.get("role"),
            },
        )


def ping_body(subscription_id: UUID, now: dt.datetime) -> dict[str, Any]:
    """What ``POST /api/webhooks/{id}/test`` sends."""
    return {
        "event": TEST_EVENT,
        "eventId": f"test-{uuid.uuid4()}",
        "timestamp": _timestamp(now),
        "subscriptionId": str(subscription_id),
    }


# -- the workflow's input and the activity's answers ----------------------------------------------
class DeliveryWorkflowInput(ApiModel):
    """``WebhookDeliveryWorkflow``'s input (id ``webhooks-<subscription id>``)."""

    subscription_id: UUID


class DeliveryPass(ApiModel):
    """One pass of the delivery activity: what is due at ``now`` (the workflow's clock, so
    time-skipping tests walk the schedule)."""

    subscription_id: UUID
    now: dt.datetime
    batch: int = 200


class DeliveryPassResult(ApiModel):
    attempted: int = 0
    delivered: int = 0
    # When the next delivery falls due (None: nothing is pending).
    next_attempt_at: dt.datetime | None = None
    # The subscription is gone or disabled: the workflow ends (PATCH isActive wakes it again).
    stop: bool = False


class RetentionInput(ApiModel):
    """``WebhookRetentionWorkflow``'s input (the ``webhook-retention`` schedule)."""

    batch: int = 5000


class PruneRequest(ApiModel):
    now: dt.datetime
    batch: int = 5000


def webhook_workflow_id(subscription_id: UUID) -> str:
    return f"webhooks-{subscription_id}"


# -- the API's shapes (Debitura's names) -----------------------------------------------------------
def _distinct(events: list[WebhookEvent]) -> list[WebhookEvent]:
    return list(dict.fromkeys(events))


def event_names(events: list[WebhookEvent]) -> list[str]:
    """How ``events`` are stored and shown."""
    return [event.value for event in events]


EventList = Annotated[
    list[WebhookEvent], Field(min_length=1, max_length=20), AfterValidator(_distinct)
]
WebhookUrl = Annotated[str, Field(min_length=1, max_length=1024)]


class CreateWebhookRequest(ApiModel):
    """Debitura's ``CreateWebhookRequest``."""

    url: WebhookUrl
    events: EventList
    is_test_mode: StrictBool = False


class UpdateWebhookRequest(ApiModel):
    """Debitura's ``UpdateWebhookRequest``: what is given changes; ``isActive=true`` re-enables
    a disabled subscription, ``regenerateSecret=true`` issues a new secret (shown once)."""

    url: WebhookUrl | None = None
    events: EventList | None = None
    is_active: StrictBool | None = None
    regenerate_secret: StrictBool | None = None
    is_test_mode: StrictBool | None = None


class WebhookDto(ApiModel):
    """Debitura's ``WebhookDto``; ``secret`` only in the answers to create and regenerate."""

    id: UUID
    url: str
    events: list[str]
    is_active: bool
    created_utc: dt.datetime
    updated_utc: dt.datetime
    disabled_reason: str | None = None
    secret: str | None = None
    is_test_mode: bool


class WebhookEventDto(ApiModel):
    """Debitura's ``WebhookEventDto``: one entry of the delivery log; ``payload`` is the JSON
    body sent, as a string."""

    id: str
    subscription_id: UUID
    case_id: UUID | None = None
    event_type: str
    payload: str
    created_at: dt.datetime
    delivered_at: dt.datetime | None = None
    attempt_count: int
    last_response_code: int | None = None
    last_error: str | None = None
    # caseloop's: the delivery gave up after the last attempt; the delivery this one replays.
    failed_at: dt.datetime | None = None
    replay_of: str | None = None


class ReplayEventResultDto(ApiModel):
    """Debitura's ``ReplayEventResultDto``; ``id`` is caseloop's: the new log entry."""

    event_id: str
    subscription_id: UUID
    event_type: str
    id: str


class TestResultDto(ApiModel):
    """Debitura's ``TestResultDto``."""

    __test__ = False  # not a pytest class

    success: bool
    http_status_code: int | None = None
    duration_ms: int
    error_message: str | None = None
    error_category: str | None = None
    test_payload: dict[str, Any]
