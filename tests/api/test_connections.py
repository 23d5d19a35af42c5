"""An action holds no database connection while its workflow works (api.deps.end_read), so
concurrent actions are bounded by Temporal, not by the API's connection pool."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowHandle

from tests.api.test_chat import post_chat
from tests.api.test_status import in_collection, move
from tests.support import Actor


async def test_an_action_holds_no_database_connection_while_its_workflow_works(
    api: httpx.AsyncClient,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    case = await in_collection(api, creditor, partner, ops)
    app: Any = api._transport.app  # type: ignore[attr-defined]
    pool = app.state.sessions.kw["bind"].pool
    held: list[int] = []
    original = WorkflowHandle.execute_update

    async def watched(self: WorkflowHandle[Any, Any], *args: Any, **kwargs: Any) -> Any:
        held.append(pool.checkedout())  # connections the API holds as the update starts
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(WorkflowHandle, "execute_update", watched)
    cid = case["caseId"]
    posted = await post_chat(api, partner, cid, "the debtor called")
    assert posted.status_code == 201, posted.text
    moved = await move(api, partner, cid, status="Payment Plan", subStatus="Plan active")
    assert moved.status_code == 200, moved.text
    assert held == [0, 0], "a request held a database connection while it waited on Temporal"
