"""The catalogue walked in a real browser: for every task type, its owner signs in, clicks the
task in the Tasks menu (its solutionUrl) and lands on the page with the form that solves it."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.tasks import TaskType
from settings import Settings
from tests.browser.test_sign_in import sign_in
from tests.portal.support import with_password
from tests.portal.test_solution_pages import WALK, task_in_its_situation
from tests.support import Actor


@pytest.mark.parametrize("task_type", WALK)
async def test_every_task_type_is_solved_one_click_from_the_tasks_menu(
    task_type: TaskType,
    page: Page,
    site: str,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    partner: Actor,
) -> None:
    local = settings.model_copy(update={"portal_base_url": site})
    owner, url, marker = await task_in_its_situation(task_type, local, sessions, creditor, partner)
    await sign_in(page, site, await with_password(sessions, owner))
    await expect(page.get_by_role("heading", name="Tasks", exact=True)).to_be_visible()

    async with page.expect_navigation() as landed:
        await page.locator("table.list").get_by_role("link", name="Paging task").click()

    response = await landed.value
    assert response is not None and response.status == 200, (task_type, url)
    assert page.url == url
    # The browser writes a boolean attribute back as open="".
    assert marker.replace(" open>", ' open="">') in await page.content(), (task_type, url)
