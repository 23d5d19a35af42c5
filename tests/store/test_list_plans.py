"""On PostgreSQL, the list queries are served by the indexes made for them: each page is read in
index order (no sort, no table scan) for every task filter, the case lists of each side, and the
debtor-name search uses the pg_trgm indexes (one over every case, one per creditor and partner). Skipped on SQLite (the plans are PostgreSQL's)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.projection import write_tasks
from domain.enums import CaseStatus, OrgKind
from domain.tasks import AccessLevel, TaskStatus, TaskType
from store import cases as case_store
from store import tasks as task_store
from store.accounts import Principal
from store.db import transaction
from store.models import CaseInvitation
from tests.api.test_list_paging import NOW, add_case, make_task
from tests.support import Actor

# Planner switches that make any scan or sort the planner could avoid look unaffordable: what
# remains is what the indexes cannot serve.
STRICT = ("enable_seqscan", "enable_bitmapscan", "enable_sort")


async def plans(
    session: AsyncSession,
    run: Callable[[AsyncSession], Awaitable[Any]],
    switches: tuple[str, ...] = STRICT,
) -> list[str]:
    """EXPLAIN of every SELECT ``run`` sends (``WITH …`` included), in order."""
    statements: list[tuple[str, Any]] = []

    def capture(_c: Any, _cur: Any, statement: str, parameters: Any, _x: Any, _m: bool) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            statements.append((statement, parameters))

    connection = await session.connection()
    for setting in switches:
        await connection.exec_driver_sql(f"SET LOCAL {setting} = off")
    engine = connection.engine.sync_engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        await run(session)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    out = []
    for statement, parameters in statements:
        result = await connection.exec_driver_sql("EXPLAIN " + statement, parameters)
        out.append("\n".join(row[0] for row in result))
    return out


async def test_list_pages_are_read_in_index_order_on_postgresql(
    sessions: async_sessionmaker[AsyncSession], creditor: Actor, partner: Actor, ops: Actor
) -> None:
    async with sessions() as session:
        if session.bind.dialect.name != "postgresql":
            pytest.skip("query plans are checked on PostgreSQL")
    case_id = await add_case(sessions, creditor, partner=partner)
    lead = await add_case(sessions, creditor)
    async with transaction(sessions) as session:
        session.add(CaseInvitation(case_id=lead, partner_id=partner.org_id))
    task = make_task(
        creditor, access=AccessLevel.CREDITOR, case_id=case_id, deadline=NOW
    ).model_copy(update={"assignee_id": creditor.principal.user_id, "overdue_since": NOW})
    async with transaction(sessions) as session:
        await write_tasks(
            session,
            [
                task,
                # Not overdue: "not overdue, Open" finds a row (an empty page reads no further).
                make_task(creditor, access=AccessLevel.CREDITOR, case_id=case_id, deadline=NOW),
                make_task(partner, access=AccessLevel.PARTNER, case_id=case_id, deadline=None),
            ],
        )
    position = task_store.TaskPosition(NOW - dt.timedelta(days=1), NOW, "")
    task_filters = {
        "first page": task_store.TaskFilter(),
        "status": task_store.TaskFilter(status=TaskStatus.OPEN),
        "type": task_store.TaskFilter(types=(TaskType.GENERIC,)),
        "assignee": task_store.TaskFilter(assignee_id=creditor.principal.user_id),
        "overdue": task_store.TaskFilter(overdue=True),
        # What the API asks when ``status`` is omitted (Open by default, issue 12).
        "type, Open": task_store.TaskFilter(types=(TaskType.GENERIC,), status=TaskStatus.OPEN),
        "assignee, Open": task_store.TaskFilter(
            assignee_id=creditor.principal.user_id, status=TaskStatus.OPEN
        ),
        "not overdue, Open": task_store.TaskFilter(overdue=False, status=TaskStatus.OPEN),
        "deadline range": task_store.TaskFilter(
            deadline_from=NOW - dt.timedelta(days=1), deadline_to=NOW + dt.timedelta(days=1)
        ),
    }
    principals: dict[str, Principal] = {
        "creditor": creditor.principal,
        "partner": partner.principal,
        "ops": ops.principal,
    }
    for who, principal in principals.items():
        for name, filters in task_filters.items():
            if principal.role is not OrgKind.CREDITOR and name not in ("first page", "status"):
                continue
            for after in (None, position):
                async with sessions() as session, session.begin():
                    found = await plans(
                        session,
                        lambda s, p=principal, f=filters, a=after: task_store.list_tasks(
                            session=s,
                            principal=p,
                            filters=f,
                            offset=0,
                            limit=10,
                            after=a,
                            count_limit=1001,
                        ),
                    )
                # The bounded count and the page, one statement (store.cursor.counted).
                assert len(found) == 1, (who, name)
                for plan in found:
                    assert "Seq Scan on tasks" not in plan, (who, name, plan)
                    assert "Sort" not in plan, (who, name, plan)
                    assert "Index" in plan, (who, name, plan)

    for who, principal in principals.items():
        for name, case_filter in {
            "first page": case_store.CaseFilter(statuses=[]),
            "status": case_store.CaseFilter(statuses=[CaseStatus.IN_COLLECTION]),
        }.items():
            async with sessions() as session, session.begin():
                found = await plans(
                    session,
                    lambda s, p=principal, f=case_filter: case_store.list_cases(
                        session=s, principal=p, filters=f, offset=0, limit=10, count_limit=1001
                    ),
                )
            page = found[-1]
            assert "Seq Scan on cases" not in page, (who, name, page)
            if principal.role is not OrgKind.PARTNER:
                # A partner's invited cases are few and sorted; its assigned ones are not.
                assert "Sort" not in page, (who, name, page)
            else:
                # Two branches, each read once for the page and its count (a CTE each), the
                # assigned cases in their index's order.
                for branch in ("branch0", "branch1"):
                    assert page.count(f"CTE {branch}\n") == 1, page
                if name == "first page":
                    assert "using ix_cases_partner_list on cases" in page, page

    async with sessions() as session, session.begin():
        found = await plans(
            session,
            lambda s: case_store.list_cases(
                session=s,
                principal=ops.principal,
                filters=case_store.CaseFilter(statuses=[], debtor_name="ging deb"),
                offset=0,
                limit=10,
                count_limit=1001,
            ),
            ("enable_seqscan",),  # a GIN index is read by bitmap scans only
        )
    # Any of the trigram indexes may serve a search over every case on a table this small: a
    # GIN index over (side, trigrams) answers a condition on the trigrams alone as well.
    assert re.search(r"Bitmap Index Scan on ix_cases_(\w+_)?debtor_name_trgm", found[0]), found[0]
    assert "Seq Scan" not in found[0], found[0]
