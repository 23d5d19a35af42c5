"""Working in the portal in a real browser: following a task's link, accepting a case, postponing
and reassigning, the Action Items panel, solving AssignBankAccount and Generic tasks. Each main
page is photographed (to SCREENSHOT_DIR when set, e.g. `make screenshots` into docs/)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.enums import OrgKind
from tests.api.test_case_work import open_task
from tests.api.test_tasks import IBAN_DK, assign, eventually, new_case, ready_case, sign
from tests.browser.test_sign_in import sign_in
from tests.portal.support import in_collection, with_password
from tests.support import Actor, make_actor


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def shoot(page: Page, shots: Path, name: str) -> None:
    await page.screenshot(path=str(shots / f"{name}.png"), full_page=True)


async def api_tasks(api: httpx.AsyncClient, actor: Actor, **params: Any) -> list[dict[str, Any]]:
    query = {"pageSize": 100, "status": ["Open", "Solved"], **params}
    got = await api.get("/api/tasks", params=query, headers=actor.headers)
    assert got.status_code == 200, got.text
    return list(got.json()["tasks"])


async def test_a_partner_follows_review_new_case_and_accepts(
    page: Page,
    live_site: tuple[str, str],
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    shots: Path,
) -> None:
    site, api_url = live_site
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as api:
        case = await ready_case(api, creditor)
        assert (await assign(api, ops, case["caseId"], partner)).status_code == 200

        task = await open_task(api, partner, "ReviewNewCase")
        await sign_in(page, site, await with_password(sessions, partner))
        await shoot(page, shots, "partner-tasks")
        await page.get_by_role("link", name=task["title"]).first.click()
        assert page.url == task["solutionUrl"]
        await shoot(page, shots, "partner-review-new-case")
        await page.get_by_role("button", name="Accept the case").click()
        await expect(page.get_by_role("status")).to_contain_text("It is now in collection")
        got = await api.get(f"/api/cases/{case['caseId']}", headers=creditor.headers)
        assert got.json()["status"] == "In Collection"
        await page.get_by_role("link", name="Tasks", exact=True).click()
        await expect(page.get_by_role("link", name=task["title"])).to_have_count(0)


async def test_postpone_keeps_the_original_deadline_visible_and_reassign_to_a_colleague(
    page: Page,
    live_site: tuple[str, str],
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    shots: Path,
) -> None:
    site, api_url = live_site
    colleague = await make_actor(sessions, OrgKind.CREDITOR, org_id=creditor.org_id)
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as api:
        case = await ready_case(api, creditor)
        deadline = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).isoformat()
        created = await api.post(
            "/api/tasks",
            json={"caseId": case["caseId"], "title": "Call the debtor", "deadline": deadline},
            headers=creditor.headers,
        )
        assert created.status_code == 201, created.text
        task = created.json()
        await sign_in(page, site, await with_password(sessions, creditor))
        await page.goto(f"{site}/tasks/{task['id']}")
        day = (dt.date.today() + dt.timedelta(days=15)).isoformat()
        await page.get_by_label("New deadline").fill(day)
        await page.get_by_label("Reason").fill("Debtor on holiday")
        await page.get_by_role("button", name="Postpone").click()
        await expect(page.get_by_role("status")).to_contain_text("original deadline is kept")
        await expect(page.get_by_text("originally")).to_be_visible()
        await shoot(page, shots, "task-page")

        await page.get_by_label("Assign to").select_option(str(colleague.principal.user_id))
        await page.get_by_role("button", name="Reassign").click()
        await expect(page.get_by_role("status")).to_contain_text("reassigned")
        after = (await api.get(f"/api/tasks/{task['id']}", headers=creditor.headers)).json()
        assert after["assignee"]["id"] == str(colleague.principal.user_id)
        assert after["originalDeadline"] == task["deadline"]


async def test_the_action_items_panel_groups_overdue_and_upcoming_and_generic_is_closed(
    page: Page,
    live_site: tuple[str, str],
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    shots: Path,
) -> None:
    site, api_url = live_site
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as api:
        case = await ready_case(api, creditor)
        await sign_in(page, site, await with_password(sessions, creditor))
        await page.goto(f"{site}/cases/{case['caseId']}")
        # Add a Generic task from the case page, due today; then the timer of an already
        # passed deadline makes another one overdue.
        await page.get_by_text("Add a task for your organisation").click()
        await page.get_by_label("Title").fill("Upcoming call")
        await page.get_by_label("Deadline (optional, end of the day)").fill(
            (dt.date.today() + dt.timedelta(days=10)).isoformat()
        )
        await page.get_by_role("button", name="Add task").click()
        await expect(page.get_by_role("status")).to_contain_text("The task is created")
        past = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)).isoformat()
        created = await api.post(
            "/api/tasks",
            json={"caseId": case["caseId"], "title": "Overdue letter", "deadline": past},
            headers=creditor.headers,
        )
        assert created.status_code == 201, created.text

        async def overdue() -> bool:
            got = await api.get(f"/api/tasks/{created.json()['id']}", headers=creditor.headers)
            return bool(got.json()["overdue"])

        await eventually(overdue, seconds=20)
        await page.goto(f"{site}/cases/{case['caseId']}")
        panel = page.locator("#action-items")
        await expect(panel).to_have_attribute("open", "")
        text = await panel.inner_text()
        assert text.index("Overdue") < text.index("Overdue letter") < text.index("Upcoming")
        assert text.index("Upcoming") < text.index("Upcoming call")
        await shoot(page, shots, "creditor-case-page")

        # The Generic task's link is its own page, where it is closed.
        await panel.get_by_role("link", name="Overdue letter").click()
        await page.get_by_role("button", name="Close task").click()
        await expect(page.get_by_role("status")).to_contain_text("The task is closed")


async def test_assign_bank_account_is_solved_through_the_account_page(
    page: Page,
    live_site: tuple[str, str],
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    shots: Path,
) -> None:
    site, api_url = live_site
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as api:
        await sign(api, creditor)
        case = await new_case(api, creditor)

        task = await open_task(api, creditor, "AssignBankAccount")
        await sign_in(page, site, await with_password(sessions, creditor))
        await page.goto(task["solutionUrl"])
        await page.get_by_label("IBAN").fill(IBAN_DK)
        await page.get_by_label("Account holder").fill("Acme ApS")
        await page.get_by_label("Currency").fill("DKK")
        await page.get_by_role("button", name="Register").click()
        await expect(page.get_by_role("status")).to_contain_text("registered")
        await shoot(page, shots, "creditor-account")
        await page.get_by_role("button", name="Set").click()
        await expect(page.get_by_role("status")).to_contain_text("set on the case")

        async def solved() -> bool:
            open_types = {t["type"] for t in await api_tasks(api, creditor, status="Open")}
            return "AssignBankAccount" not in open_types

        await eventually(solved)
        got = await api.get(f"/api/cases/{case['caseId']}", headers=creditor.headers)
        assert got.json()["status"] == "Validated"
        await page.goto(f"{site}/cases")
        await shoot(page, shots, "creditor-cases")


async def test_a_creditor_follows_reply_to_chat_replies_and_the_task_leaves_the_menu(
    page: Page,
    live_site: tuple[str, str],
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    shots: Path,
) -> None:
    site, api_url = live_site
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as api:
        case = {"caseId": await in_collection(api, creditor, partner, ops)}
        asked = await api.post(
            f"/api/cases/{case['caseId']}/chats",
            json={"message": "Please send the signed order."},
            headers=partner.headers,
        )
        assert asked.status_code == 201, asked.text

        task = await open_task(api, creditor, "ReplyToChat")
        await sign_in(page, site, await with_password(sessions, creditor))
        await page.get_by_role("link", name=task["title"]).click()
        assert page.url == task["solutionUrl"]
        await expect(page.get_by_text("Please send the signed order.")).to_be_visible()
        await page.get_by_label("Reply in Invoice Chat").fill("Attached, thank you.")
        await page.get_by_label("Attach files (optional)").set_input_files(
            files=[
                {"name": "order.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4\n%%EOF\n"}
            ]
        )
        await page.get_by_role("button", name="Send").click()
        await expect(page.get_by_role("status")).to_contain_text("Your message is sent")
        await expect(page.get_by_role("link", name="order.pdf")).to_be_visible()
        await shoot(page, shots, "creditor-chat")
        await page.get_by_role("navigation", name="Main").get_by_role("link", name="Tasks").click()
        await expect(page.get_by_role("link", name=task["title"])).to_have_count(0)


async def test_the_chat_page_shows_a_new_reply_on_its_own_and_keeps_what_is_typed(
    page: Page,
    live_site: tuple[str, str],
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    site, api_url = live_site
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as api:
        case = {"caseId": await in_collection(api, creditor, partner, ops)}
        await sign_in(page, site, await with_password(sessions, creditor))
        await page.goto(f"{site}/cases/{case['caseId']}/chat")
        await page.get_by_label("Reply in Invoice Chat").fill("Half-written answer")

        said = await api.post(
            f"/api/cases/{case['caseId']}/chats",
            json={"message": "A new question from the partner"},
            headers=partner.headers,
        )
        assert said.status_code == 201, said.text

        await expect(page.get_by_text("A new question from the partner")).to_be_visible(
            timeout=12_000
        )
        await expect(page.get_by_label("Reply in Invoice Chat")).to_have_value(
            "Half-written answer"
        )
