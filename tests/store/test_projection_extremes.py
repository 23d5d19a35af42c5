"""Property: whatever the domain types accept, the projection activities can write, on SQLite
and PostgreSQL alike (.ci/run re-runs this on PostgreSQL). A value a workflow accepted but its
projection could not store once wedged a case for good."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.projection import ProjectionActivities
from domain.accounts import AccountProjection
from domain.cases import CaseProjection, CaseRecord, CaseSubmission, HistoryEntry
from domain.chat import ChatRole, RelationshipProjection, ThreadType
from domain.enums import CaseStatus, OrgKind
from domain.ids import case_number
from domain.plausible import MAX_PAYMENT_TERM
from domain.tasks import AccessLevel, Scope, Task, TaskType
from domain.time import EARLIEST, LATEST, as_utc
from store.models import Case, ChatMessageRow, Organisation, Relationship, TaskRow
from tests.support import Actor, make_actor

# Any character a person could type or paste: everything but NUL (refused everywhere) and lone
# surrogates (not encodable).
CHARACTERS = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")


VISIBLE = st.characters(categories=("L", "N", "P", "S"))


def text(min_size: int, max_size: int) -> st.SearchStrategy[str]:
    """Any text of that length, with a visible character where it may not be empty (the domain
    refuses text of only invisible characters; ``ApiModel``)."""
    anything = st.text(CHARACTERS, min_size=0, max_size=max_size - 1)
    visible = st.tuples(anything, VISIBLE, anything).map(lambda parts: "".join(parts)[:max_size])
    return visible if min_size else st.just("") | visible


# Moments near and at both ends of the accepted range, in any UTC offset.
OFFSETS = st.timedeltas(
    min_value=dt.timedelta(hours=-23, minutes=-59), max_value=dt.timedelta(hours=23, minutes=59)
).map(lambda delta: dt.timezone(dt.timedelta(minutes=delta // dt.timedelta(minutes=1))))
MOMENTS = st.one_of(
    st.sampled_from([EARLIEST, LATEST - dt.timedelta(microseconds=1)]),
    st.datetimes(
        min_value=dt.datetime(1900, 1, 1),
        max_value=dt.datetime(2099, 12, 31, 23, 59, 59, 999999),
        timezones=OFFSETS,
    ),
)
# Any moment Python can represent, in any offset: the domain types must refuse those a
# database cannot store (the deadline that once wedged a case was 9999-12-31T23:59:59-01:00).
ANY_MOMENTS = st.one_of(
    st.sampled_from(
        [
            dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.timezone(-dt.timedelta(hours=1))),
            dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1))),
        ]
    ),
    st.datetimes(
        min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=OFFSETS
    ),
)
DATES = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2099, 12, 31))
AMOUNTS = st.one_of(
    st.sampled_from([Decimal("0.01"), Decimal("9999999999999.99")]),
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("9999999999999.99"), places=2),
)


@st.composite
def submissions(draw: st.DrawFn) -> dict[str, Any]:
    invoice = draw(DATES)
    return {
        # Unique per creditor (the API reserves it before the workflow starts).
        "creditorReference": uuid.uuid4().hex[:12] + draw(text(0, 88)),
        "currencyCode": draw(st.sampled_from(["DKK", "EUR", "USD", "JPY", "KWD"])),
        "amountToRecover": str(draw(AMOUNTS)),
        "date": invoice.isoformat(),
        # Up to the longest payment term (domain/plausible.py), and sometimes a little past it.
        "dueDate": (
            invoice + dt.timedelta(days=draw(st.integers(0, MAX_PAYMENT_TERM.days + 10)))
        ).isoformat(),
        "claimDescription": draw(text(1, 4000)),
        "debtor": {
            "type": draw(st.sampled_from(["Company", "Private"])),
            "name": draw(text(1, 200)),
            "contactPerson": draw(st.none() | text(0, 200)),
            "address": draw(st.none() | text(0, 200)),
            "city": draw(st.none() | text(0, 100)),
            "zipCode": draw(st.none() | text(0, 20)),
            "countryAlpha2": draw(st.sampled_from(["DK", "DE", "SE", "GB", "US"])),
        },
    }


def _valid(model: Any, data: dict[str, Any]) -> Any:
    """The value as the domain type makes it; values it refuses are not this test's business."""
    try:
        return model.model_validate(data)
    except ValidationError:
        reject()


def _task(
    owner: uuid.UUID,
    case_id: uuid.UUID | None,
    relationship_id: uuid.UUID | None,
    draw: st.DrawFn,
    deadlines: st.SearchStrategy[dt.datetime] = MOMENTS,
) -> dict[str, Any]:
    task_id = str(uuid.uuid4())
    return {
        "id": task_id,
        "type": TaskType.GENERIC,
        "title": draw(text(1, 300)),
        "description": draw(text(0, 4000)),
        "accessLevel": AccessLevel.CREDITOR,
        "scope": Scope.CASE if case_id else Scope.ACCOUNT,
        "ownerOrgId": str(owner),
        "ownerCountry": "DK",
        "ownerTimezone": "Europe/Copenhagen",
        "caseId": str(case_id) if case_id else None,
        "relationshipId": str(relationship_id) if relationship_id else None,
        "deadline": draw(deadlines).isoformat(),
        "originalDeadline": draw(st.none() | MOMENTS.map(dt.datetime.isoformat)),
        "dateCreated": draw(MOMENTS).isoformat(),
        "overdueSince": draw(st.none() | MOMENTS.map(dt.datetime.isoformat)),
        "key": f"generic:{task_id}",
        "workflowId": f"case-{case_id}",
        "version": 1,
    }


def _message(
    partner: uuid.UUID,
    case_id: uuid.UUID | None,
    relationship_id: uuid.UUID | None,
    draw: st.DrawFn,
) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "seq": 1,
        "caseId": str(case_id) if case_id else None,
        "relationshipId": str(relationship_id) if relationship_id else None,
        "threadType": ThreadType.INVOICE_CHAT if case_id else ThreadType.GENERAL,
        "partnerId": str(partner),
        "role": ChatRole.CREDITOR,
        "body": draw(text(1, 10000)),
        "createdAt": draw(MOMENTS).isoformat(),
    }


def _same_instant(stored: dt.datetime | None, given: dt.datetime | None) -> bool:
    return (stored is None and given is None) or (
        stored is not None and given is not None and as_utc(stored) == as_utc(given)
    )


EXAMPLES = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@EXAMPLES
@given(data=st.data())
async def test_any_case_the_domain_accepts_is_projected_intact(
    data: st.DataObject, sessions: async_sessionmaker[AsyncSession], creditor: Actor, partner: Actor
) -> None:
    draw = data.draw
    case_id = uuid.uuid4()
    record: CaseRecord = _valid(
        CaseRecord,
        {
            "caseId": str(case_id),
            "caseNumber": case_number(uuid.uuid4().int % 10**9, 2099),
            "creditor": creditor.org_ref.model_dump(mode="json"),
            "submittedBy": str(creditor.principal.user_id),
            "submission": _valid(CaseSubmission, draw(submissions())).model_dump(mode="json"),
            "lastStatusChange": draw(MOMENTS).isoformat(),
            "createdAt": draw(MOMENTS).isoformat(),
        },
    )
    projection: CaseProjection = _valid(
        CaseProjection,
        {
            "version": 1,
            "modifiedAt": draw(MOMENTS).isoformat(),
            "case": record.model_dump(mode="json"),
            "newHistory": [
                HistoryEntry(
                    seq=1,
                    timestamp=draw(MOMENTS),
                    status=CaseStatus.CREATED,
                    note=draw(text(0, 4000)),
                ).model_dump(mode="json")
            ],
            "tasks": [_task(creditor.org_id, case_id, None, draw, MOMENTS | ANY_MOMENTS)],
            "messages": [_message(partner.org_id, case_id, None, draw)],
        },
    )
    await ActivityEnvironment().run(ProjectionActivities(sessions).project_case, projection)

    async with sessions() as session:
        case = await session.get(Case, case_id)
        task = await session.get(TaskRow, projection.tasks[0].id)
        message = await session.get(ChatMessageRow, projection.messages[0].id)
    submission = record.submission
    assert case is not None and task is not None and message is not None
    assert (case.debtor_name, case.creditor_reference, case.claim_description) == (
        submission.debtor.name,
        submission.creditor_reference,
        submission.claim_description,
    )
    assert (case.amount_to_recover, case.date, case.due_date) == (
        submission.amount_to_recover,
        submission.date,
        submission.due_date,
    )
    assert _same_instant(case.updated_at, projection.modified_at)
    assert (task.title, task.description) == (
        projection.tasks[0].title,
        projection.tasks[0].description,
    )
    assert _same_instant(task.deadline, projection.tasks[0].deadline)
    assert _same_instant(task.original_deadline, projection.tasks[0].original_deadline)
    assert message.body == projection.messages[0].body
    assert _same_instant(message.created_at, projection.messages[0].created_at)


@EXAMPLES
@given(data=st.data())
async def test_any_relationship_and_account_change_the_domain_accepts_is_projected(
    data: st.DataObject, sessions: async_sessionmaker[AsyncSession], creditor: Actor
) -> None:
    draw = data.draw
    relationship_id = uuid.uuid4()
    partner = await make_actor(sessions, OrgKind.PARTNER)  # one relationship per pair
    relationship: RelationshipProjection = _valid(
        RelationshipProjection,
        {
            "relationshipId": str(relationship_id),
            "version": 1,
            "creditorId": str(creditor.org_id),
            "partnerId": str(partner.org_id),
            "linkedAt": draw(MOMENTS).isoformat(),
            "messages": [_message(partner.org_id, None, relationship_id, draw)],
            "tasks": [_task(creditor.org_id, None, relationship_id, draw)],
        },
    )
    signed = draw(MOMENTS)
    account = AccountProjection(
        creditor_id=creditor.org_id,
        # Versions are INTEGER columns: 2**31 - 1 is the largest PostgreSQL stores (one more
        # overflowed there; a version grows by one per change, so no account gets near it).
        version=draw(st.integers(min_value=1, max_value=2**31 - 1)),
        contract_signed_at=signed,
        tasks=[_valid(Task, _task(creditor.org_id, None, None, draw))],
    )
    activities = ProjectionActivities(sessions)
    await ActivityEnvironment().run(activities.project_relationship, relationship)
    await ActivityEnvironment().run(activities.project_account, account)

    async with sessions() as session:
        row = await session.get(Relationship, relationship_id)
        message = await session.get(ChatMessageRow, relationship.messages[0].id)
        org = await session.get(Organisation, creditor.org_id)
        tasks = set(await session.scalars(select(TaskRow.id)))
    assert row is not None and message is not None and org is not None
    assert _same_instant(row.linked_at, relationship.linked_at)
    assert message.body == relationship.messages[0].body
    assert {relationship.tasks[0].id, account.tasks[0].id} <= tasks
    if org.account_version == account.version:
        assert _same_instant(org.contract_signed_at, signed)
