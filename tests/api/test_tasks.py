"""Tasks through the API: account tasks, partner review, postpone/assign, visibility, catalogue."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.routing import Match

from activities.projection import write_tasks
from api.app import create_app
from domain.calendar import is_business_day
from domain.enums import OrgKind
from domain.tasks import CATALOGUE, AccessLevel, Scope, Task, TaskType, action_of
from settings import Settings
from store.db import transaction
from store.models import Case, TaskRow
from tests.support import Actor, case_body, make_actor

T = TypeVar("T")
IBAN_DK = "DK5000400440116243"


async def eventually(probe: Callable[[], Awaitable[T | None]], *, seconds: float = 10) -> T:
    """Poll until ``probe`` returns something truthy (work between workflows is asynchronous)."""
    for _ in range(int(seconds * 20)):
        result = await probe()
        if result:
            return result
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


async def tasks_of(api: httpx.AsyncClient, actor: Actor, **params: Any) -> list[dict[str, Any]]:
    """The actor's tasks, open and solved unless ``status`` says which (the API's default is
    Open only)."""
    query = {"pageSize": 100, "status": ["Open", "Solved"], **params}
    response = await api.get("/api/tasks", params=query, headers=actor.headers)
    assert response.status_code == 200, response.text
    return list(response.json()["tasks"])


async def new_case(api: httpx.AsyncClient, creditor: Actor, **overrides: Any) -> dict[str, Any]:
    response = await api.post("/api/cases", json=case_body(**overrides), headers=creditor.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def bank_account(api: httpx.AsyncClient, creditor: Actor, currency: str = "DKK") -> str:
    response = await api.post(
        "/api/bank-accounts",
        json={"iban": IBAN_DK, "holderName": "Acme ApS", "currencyCode": currency},
        headers=creditor.headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def sign(api: httpx.AsyncClient, creditor: Actor) -> None:
    response = await api.post("/api/account/contract/sign", headers=creditor.headers)
    assert response.status_code == 200, response.text
    assert response.json()["contractSigned"] is True


async def test_case_without_bank_account_raises_one_account_task_counting_cases(
    api: httpx.AsyncClient, creditor: Actor
) -> None:
    first = await new_case(api, creditor)

    async def open_bank_tasks() -> list[dict[str, Any]]:
        return await tasks_of(api, creditor, type="AssignBankAccount", status="Open")

    [task] = await eventually(open_bank_tasks)
    assert task["title"] == "Assign a bank account to 1 case"
    assert (task["scope"], task["accessLevel"], task["caseId"]) == ("Account", "Creditor", None)
    deadline = dt.datetime.fromisoformat(task["deadline"]).astimezone(ZoneInfo("Europe/Copenhagen"))
    assert deadline.time() == dt.time(23, 59, 59)
    assert is_business_day(deadline.date(), "DK")
    assert task["originalDeadline"] == task["deadline"]
    assert task["solutionUrl"] == "https://portal.example.test/account/bank-accounts"
    assert task["action"] is None

    second = await new_case(api, creditor)

    async def retitled() -> list[dict[str, Any]]:
        found = await open_bank_tasks()
        return found if found and found[0]["title"].endswith("2 cases") else []

    [task2] = await eventually(retitled)
    assert task2["id"] == task["id"], "one task covers both cases"
    for case in (first, second):
        case_tasks = await api.get(f"/api/cases/{case['caseId']}/tasks", headers=creditor.headers)
        assert all(t["scope"] == "Case" for t in case_tasks.json()), "account tasks stay off cases"

    account_id = await bank_account(api, creditor)
    for case in (first, second):
        response = await api.put(
            f"/api/cases/{case['caseId']}/bank-account",
            json={"bankAccountId": account_id},
            headers=creditor.headers,
        )
        assert response.status_code == 200, response.text
        assert response.json()["bankAccountId"] == account_id

    async def solved() -> list[dict[str, Any]]:
        return await tasks_of(api, creditor, type="AssignBankAccount", status="Solved")

    [done] = await eventually(solved)
    assert done["id"] == task["id"]
    assert done["dateSolved"] is not None
    assert await open_bank_tasks() == []


async def test_contract_signing_releases_every_waiting_case(
    api: httpx.AsyncClient, creditor: Actor
) -> None:
    account_id = await bank_account(api, creditor)
    cases = [await new_case(api, creditor, bankAccountId=account_id) for _ in range(3)]
    for case in cases:
        assert case["subStatus"] == "Pending contract signing"

    async def counted_all() -> list[dict[str, Any]] | None:
        # The account counts each case when the case's signal arrives, after the case answered.
        open_tasks = await tasks_of(api, creditor, type="SignContract", status="Open")
        return open_tasks if open_tasks and "3 cases" in open_tasks[0]["description"] else None

    [task] = await eventually(counted_all)
    assert "3 cases" in task["description"]

    await sign(api, creditor)

    async def all_validated() -> bool:
        statuses = [
            (await api.get(f"/api/cases/{c['caseId']}", headers=creditor.headers)).json()["status"]
            for c in cases
        ]
        return statuses == ["Validated"] * 3

    await eventually(all_validated)
    [solved] = await tasks_of(api, creditor, type="SignContract")
    assert solved["status"] == "Solved"
    assert solved["resolvedBy"]["kind"] == "user"
    assert (await api.get("/api/account", headers=creditor.headers)).json()["contractSigned"]
    # A case created after signing does not wait for the contract.
    later = await new_case(api, creditor, bankAccountId=account_id)

    async def later_validated() -> bool:
        got = await api.get(f"/api/cases/{later['caseId']}", headers=creditor.headers)
        return bool(got.json()["status"] == "Validated")

    await eventually(later_validated)


async def ready_case(api: httpx.AsyncClient, creditor: Actor) -> dict[str, Any]:
    """A Validated case: contract signed, bank account set."""
    await sign(api, creditor)
    case = await new_case(api, creditor, bankAccountId=await bank_account(api, creditor))

    async def validated() -> dict[str, Any] | None:
        got = (await api.get(f"/api/cases/{case['caseId']}", headers=creditor.headers)).json()
        return dict(got) if got["status"] == "Validated" else None

    return await eventually(validated)


async def assign(
    api: httpx.AsyncClient, ops: Actor, case_id: str, partner: Actor
) -> httpx.Response:
    return await api.post(
        f"/api/cases/{case_id}/assign", json={"partnerId": str(partner.org_id)}, headers=ops.headers
    )


async def test_partner_reviews_assigned_case_and_accepting_solves_the_task(
    api: httpx.AsyncClient, creditor: Actor, partner: Actor, ops: Actor
) -> None:
    case = await ready_case(api, creditor)
    assigned = await assign(api, ops, case["caseId"], partner)
    assert assigned.status_code == 200, assigned.text
    assert (assigned.json()["status"], assigned.json()["subStatus"]) == (
        "Assigned",
        "Partner reviewing",
    )

    [review] = (await api.get(f"/api/cases/{case['caseId']}/tasks", headers=partner.headers)).json()
    assert (review["type"], review["typeLabel"], review["accessLevel"]) == (
        "ReviewNewCase",
        "Review New Case",
        "Partner",
    )
    assert review["caseReference"] == case["creditorReference"]
    deadline = dt.datetime.fromisoformat(review["deadline"]).astimezone(
        ZoneInfo("Europe/Copenhagen")
    )
    assert deadline.time() == dt.time(23, 59, 59) and is_business_day(deadline.date(), "DK")
    # The creditor never sees the partner's task, not even by id.
    creditor_case_tasks = await api.get(
        f"/api/cases/{case['caseId']}/tasks", headers=creditor.headers
    )
    assert [t["type"] for t in creditor_case_tasks.json()] == []
    assert (
        await api.get(f"/api/tasks/{review['id']}", headers=creditor.headers)
    ).status_code == 404
    assert review["id"] not in [t["id"] for t in await tasks_of(api, creditor)]

    accepted = await api.post(f"/api/cases/{case['caseId']}/accept", headers=partner.headers)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "In Collection"
    assert accepted.json()["lifecycle"] == "Active"
    solved = (await api.get(f"/api/tasks/{review['id']}", headers=partner.headers)).json()
    assert solved["status"] == "Solved"
    assert solved["resolvedBy"] == {
        "kind": "user",
        "userId": str(partner.principal.user_id),
        "reason": "case accepted",
    }
    again = await api.post(f"/api/cases/{case['caseId']}/accept", headers=partner.headers)
    assert again.status_code == 409
    assert again.json()["code"] == "invalid_transition"


async def test_partner_rejection_returns_case_to_validated_with_reason(
    api: httpx.AsyncClient, creditor: Actor, partner: Actor, ops: Actor
) -> None:
    case = await ready_case(api, creditor)
    assert (await assign(api, ops, case["caseId"], partner)).status_code == 200
    no_reason = await api.post(
        f"/api/cases/{case['caseId']}/reject", json={}, headers=partner.headers
    )
    assert no_reason.status_code == 422
    rejected = await api.post(
        f"/api/cases/{case['caseId']}/reject",
        json={"reason": "Outside our jurisdiction"},
        headers=partner.headers,
    )
    assert rejected.status_code == 204, rejected.text
    history = (
        await api.get(f"/api/cases/{case['caseId']}/history", headers=creditor.headers)
    ).json()
    last = history["history"][-1]
    assert last["status"] == "Validated"
    assert "Outside our jurisdiction" in last["note"]
    # The partner no longer sees the case, nor its tasks on it (tests/api/test_task_visibility.py).
    assert (
        await api.get(f"/api/cases/{case['caseId']}", headers=partner.headers)
    ).status_code == 404
    assert await tasks_of(api, partner, type="ReviewNewCase") == []
    [task] = await tasks_of(api, ops, type="ReviewNewCase", caseId=case["caseId"])
    assert task["status"] == "Solved"


async def test_assigning_needs_ops_and_a_validated_case(
    api: httpx.AsyncClient, creditor: Actor, partner: Actor, ops: Actor
) -> None:
    case = await new_case(api, creditor)  # still waiting for contract and bank account
    assert (await assign(api, creditor, case["caseId"], partner)).status_code == 403
    not_ready = await assign(api, ops, case["caseId"], partner)
    assert not_ready.status_code == 409
    assert "Validated" in not_ready.json()["detail"]
    bad_partner = await api.post(
        f"/api/cases/{case['caseId']}/assign",
        json={"partnerId": str(creditor.org_id)},
        headers=ops.headers,
    )
    assert bad_partner.status_code == 422


async def test_postpone_keeps_original_deadline_and_rejects_the_past(
    api: httpx.AsyncClient, creditor: Actor, partner: Actor, ops: Actor
) -> None:
    case = await ready_case(api, creditor)
    await assign(api, ops, case["caseId"], partner)
    [review] = (await api.get(f"/api/cases/{case['caseId']}/tasks", headers=partner.headers)).json()
    later = (dt.datetime.fromisoformat(review["deadline"]) + dt.timedelta(days=3)).isoformat()
    postponed = await api.post(
        f"/api/tasks/{review['id']}/postpone",
        json={"deadline": later, "reason": "Waiting for the debtor register"},
        headers=partner.headers,
    )
    assert postponed.status_code == 200, postponed.text
    body = postponed.json()
    assert dt.datetime.fromisoformat(body["deadline"]) == dt.datetime.fromisoformat(later)
    assert body["originalDeadline"] == review["deadline"]

    past = await api.post(
        f"/api/tasks/{review['id']}/postpone",
        json={"deadline": "2020-01-01T00:00:00Z", "reason": "x"},
        headers=partner.headers,
    )
    assert past.status_code == 422
    assert past.json()["code"] == "invalid_deadline"
    unchanged = (await api.get(f"/api/tasks/{review['id']}", headers=partner.headers)).json()
    assert unchanged["deadline"] == body["deadline"]
    other_side = await api.post(
        f"/api/tasks/{review['id']}/postpone",
        json={"deadline": later, "reason": "x"},
        headers=creditor.headers,
    )
    assert other_side.status_code == 404


async def test_assigning_task_to_another_organisations_user_is_422_and_changes_nothing(
    api: httpx.AsyncClient,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    case = await ready_case(api, creditor)
    await assign(api, ops, case["caseId"], partner)
    [review] = (await api.get(f"/api/cases/{case['caseId']}/tasks", headers=partner.headers)).json()
    outsider = await api.post(
        f"/api/tasks/{review['id']}/assign",
        json={"userId": str(creditor.principal.user_id)},
        headers=partner.headers,
    )
    assert outsider.status_code == 422
    assert outsider.json()["errors"][0]["field"] == "userId"
    assert (await api.get(f"/api/tasks/{review['id']}", headers=partner.headers)).json()[
        "assignee"
    ] is None

    colleague = await make_actor(sessions, OrgKind.PARTNER, org_id=partner.org_id)
    assigned = await api.post(
        f"/api/tasks/{review['id']}/assign",
        json={"userId": str(colleague.principal.user_id)},
        headers=partner.headers,
    )
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["assignee"]["id"] == str(colleague.principal.user_id)
    mine = await tasks_of(api, partner, assignee=str(colleague.principal.user_id))
    assert [t["id"] for t in mine] == [review["id"]]


async def test_generic_tasks_are_created_and_closed_by_hand_others_are_not(
    api: httpx.AsyncClient, creditor: Actor, partner: Actor, ops: Actor
) -> None:
    case = await ready_case(api, creditor)
    created = await api.post(
        "/api/tasks",
        json={"caseId": case["caseId"], "title": "Call the debtor's accountant"},
        headers=creditor.headers,
    )
    assert created.status_code == 201, created.text
    generic = created.json()
    assert (generic["type"], generic["accessLevel"], generic["deadline"]) == (
        "Generic",
        "Creditor",
        None,
    )
    closed = await api.post(f"/api/tasks/{generic['id']}/close", json={}, headers=creditor.headers)
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "Solved"

    await assign(api, ops, case["caseId"], partner)
    [review] = (await api.get(f"/api/cases/{case['caseId']}/tasks", headers=partner.headers)).json()
    refused = await api.post(f"/api/tasks/{review['id']}/close", json={}, headers=partner.headers)
    assert refused.status_code == 409
    assert refused.json()["code"] == "task_not_resolvable_by_hand"
    not_done = await api.post(f"/api/tasks/{review['id']}/done", json={}, headers=partner.headers)
    assert not_done.status_code == 409
    still = (await api.get(f"/api/tasks/{review['id']}", headers=partner.headers)).json()
    assert still["status"] == "Open"


async def test_catalogue_drives_every_task_type_in_the_api(
    api: httpx.AsyncClient,
    creditor: Actor,
    partner: Actor,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    # One projected task of every type, owned by the side the catalogue says (Generic: creditor),
    # on a case both sides see (a task on a case is visible only with its case).
    now = dt.datetime.now(dt.UTC)
    case_id = uuid.uuid4()
    async with transaction(sessions) as session:
        session.add(
            Case(
                id=case_id,
                version=1,
                case_number="CL-2026-999999",
                creditor_id=creditor.org_id,
                partner_id=partner.org_id,
                submitted_by=creditor.principal.user_id,
                creditor_reference="CATALOGUE-1",
                currency_code="DKK",
                amount_to_recover=Decimal("100.00"),
                date=now.date(),
                due_date=now.date(),
                claim_description="Catalogue test",
                debtor_name="Debtor",
                debtor={},
                status="In Collection",
                sub_status=None,
                last_status_change=now,
                created_at=now,
                updated_at=now,
            )
        )
    tasks = []
    for spec in CATALOGUE.values():
        owner = partner if spec.access is AccessLevel.PARTNER else creditor
        tasks.append(
            Task(
                id=str(uuid.uuid4()),
                type=spec.type,
                title=spec.label,
                description="",
                access_level=spec.access or AccessLevel.CREDITOR,
                scope=spec.scope,
                owner_org_id=owner.org_id,
                owner_country="DK",
                owner_timezone="Europe/Copenhagen",
                case_id=case_id if spec.scope is Scope.CASE else None,
                date_created=now,
                key=spec.type.value,
                workflow_id="catalogue-test",
                version=1,
            )
        )
    async with transaction(sessions) as session:
        await write_tasks(session, tasks)

    seen = {t["type"]: t for t in await tasks_of(api, creditor) + await tasks_of(api, partner)}
    assert set(seen) == {t.value for t in TaskType}
    for spec in CATALOGUE.values():
        task = seen[spec.type.value]
        assert task["typeLabel"] == spec.label
        assert task["accessLevel"] == (spec.access or AccessLevel.CREDITOR).value
        assert task["scope"] == spec.scope.value
        # A body built from the task's key needs a key of its pattern (these keys are not).
        expected_action = (
            {
                "method": spec.action.method,
                "path": spec.action.path.format(caseId=case_id),
                "body": spec.action.body,
                "needsMessage": spec.action.message,
            }
            if spec.action and not spec.action.key
            else None
        )
        assert task["action"] == expected_action
        assert task["solutionUrl"].startswith("https://portal.example.test/")
    # Every action is a route of the app, with that method.
    app = create_app(settings)

    def routed(action: dict[str, str]) -> bool:
        """Whether the app has a route for this method and path (as it routes a request)."""
        scope = {"type": "http", "method": action["method"], "path": action["path"]}
        return any(route.matches(scope)[0] is Match.FULL for route in app.routes)

    actions = [task["action"] for task in seen.values() if task["action"]]
    # Chat tasks of a relationship chat (no case) name the relationship's chat instead.
    pair = uuid.uuid4()
    actions += [
        action
        for spec in CATALOGUE.values()
        if spec.relationship_action and (action := action_of(spec, None, pair))
    ]
    assert {
        "method": "POST",
        "path": f"/api/relationships/{pair}/chats",
        "body": None,
        "needs_message": True,
    } in actions, "action_of gives the view's fields by their Python names"
    unrouted = {(a["method"], a["path"]) for a in actions if not routed(a)}
    assert unrouted == set(), "every action the API names is a route of the app"
    assert seen["ClientInputRequired"]["action"] == {
        "method": "POST",
        "path": f"/api/cases/{case_id}/chats",
        "body": {"threadType": "Invoice Chat"},
        "needsMessage": True,
    }
    # Each side sees only its own side's tasks.
    assert {t["accessLevel"] for t in await tasks_of(api, creditor)} == {"Creditor"}
    assert {t["accessLevel"] for t in await tasks_of(api, partner)} == {"Partner"}
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(TaskRow)) == len(TaskType)


async def test_signing_still_releases_cases_when_one_waiting_case_is_gone(
    api: httpx.AsyncClient, creditor: Actor, dev_env: Any
) -> None:
    account_id = await bank_account(api, creditor)
    gone, kept = [await new_case(api, creditor, bankAccountId=account_id) for _ in range(2)]
    await eventually(lambda: tasks_of(api, creditor, type="SignContract", status="Open"))
    await dev_env.client.get_workflow_handle(f"case-{gone['caseId']}").terminate("test: case gone")

    await sign(api, creditor)

    async def kept_validated() -> bool:
        got = await api.get(f"/api/cases/{kept['caseId']}", headers=creditor.headers)
        return bool(got.json()["status"] == "Validated")

    await eventually(kept_validated)
    [task] = await tasks_of(api, creditor, type="SignContract")
    assert task["status"] == "Solved"
    account = dev_env.client.get_workflow_handle(f"creditor-{creditor.org_id}")
    assert (await account.describe()).status.name == "RUNNING"


async def test_a_case_submitted_after_signing_is_answered_validated_and_tells_the_account_nothing(
    api: httpx.AsyncClient, creditor: Actor, dev_env: Any
) -> None:
    await sign(api, creditor)
    account = dev_env.client.get_workflow_handle(f"creditor-{creditor.org_id}")
    events_before = len((await account.fetch_history()).events)

    case = await new_case(api, creditor, bankAccountId=await bank_account(api, creditor))

    # The read model showed the signature, which is final: the case does not wait for the
    # account to confirm it, so intake completes in the task that creates it.
    assert (case["status"], case["subStatus"]) == ("Validated", None)
    history = await api.get(f"/api/cases/{case['caseId']}/history", headers=creditor.headers)
    assert [(h["status"], h["subStatus"]) for h in history.json()["history"]] == [
        ("Created", None),
        ("Validated", None),
    ]
    # It is on none of the account's lists, so nothing was sent there (no release either).
    await asyncio.sleep(0.5)
    assert len((await account.fetch_history()).events) == events_before
    assert await tasks_of(api, creditor, type="AssignBankAccount") == []
