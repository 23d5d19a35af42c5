"""The ``DivisionIds`` filter of the case list is served by ``ix_cases_division_list``, on SQLite
and on PostgreSQL: among a creditor's many cases the few of one division are read through it,
in the list's order (no sort of the creditor's cases), for the creditor and for ops."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import event, insert, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.divisions import DivisionDetails
from store import cases as case_store
from store.accounts import Principal
from store.db import transaction
from store.divisions import new_division
from store.models import Case
from tests.store.test_list_plans import STRICT, plans
from tests.support import SEED_TIME, Actor, add_case

CASES_WITHOUT = 3000  # the creditor's cases without a division
CASES_WITH = 5  # the division's


async def _seed(sessions: async_sessionmaker[AsyncSession], creditor: Actor) -> uuid.UUID:
    details = DivisionDetails(company_name="Sales", city="Aarhus", country_code="DK")
    division = new_division(
        division_id=uuid.uuid4(), creditor_id=creditor.org_id, details=details, now=SEED_TIME
    )
    async with transaction(sessions) as session:
        session.add(division)
    template = await add_case(sessions, creditor)
    async with sessions() as session:
        row = await session.get(Case, template)
        assert row is not None
        base = {c.key: getattr(row, c.key) for c in Case.__table__.columns}
    rows: list[dict[str, Any]] = []
    # The division's cases spread over the creditor's list.
    named = {k * (CASES_WITHOUT // CASES_WITH) for k in range(CASES_WITH)}
    for i in range(CASES_WITHOUT + CASES_WITH):
        case_id = uuid.uuid4()
        moment = SEED_TIME - dt.timedelta(minutes=i)
        rows.append(
            {
                **base,
                "id": case_id,
                "case_number": f"CL-2026-P{i:08d}",
                "creditor_reference": f"PLAN-{i}",
                "amount_to_recover": Decimal("100.00"),
                "created_at": moment,
                "updated_at": moment,
                "last_status_change": moment,
                "creditor_division_id": division.id if i in named else None,
            }
        )
    async with transaction(sessions) as session:
        await session.execute(insert(Case), rows)
        await session.execute(
            update(Case).where(Case.id == template).values(creditor_division_id=None)
        )
    async with sessions() as session, session.begin():
        await (await session.connection()).exec_driver_sql("ANALYZE")
    return division.id


async def _sqlite_plans(session: AsyncSession, principal: Principal, filters: Any) -> list[str]:
    """EXPLAIN QUERY PLAN of every SELECT the list sends."""
    statements: list[tuple[str, Any]] = []

    def capture(_c: Any, _cur: Any, statement: str, parameters: Any, _x: Any, _m: bool) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            statements.append((statement, parameters))

    connection = await session.connection()
    engine = connection.engine.sync_engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        await _list(session, principal, filters)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    out = []
    for statement, parameters in statements:
        result = await connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
        out.append("\n".join(str(row[-1]) for row in result))
    return out


async def _list(session: AsyncSession, principal: Principal, filters: Any) -> Any:
    return await case_store.list_cases(
        session=session, principal=principal, filters=filters, offset=0, limit=10, count_limit=1001
    )


async def test_the_division_filter_reads_its_index_in_list_order(
    sessions: async_sessionmaker[AsyncSession], creditor: Actor, ops: Actor
) -> None:
    division_id = await _seed(sessions, creditor)
    one = case_store.CaseFilter(statuses=[], division_ids=(division_id,))
    for principal in (creditor.principal, ops.principal):
        async with sessions() as session:
            page = await _list(session, principal, one)
        assert page.total == CASES_WITH
        assert [r.case.creditor_division_id for r in page.rows] == [division_id] * CASES_WITH
        assert [r.division_name for r in page.rows] == ["Sales"] * CASES_WITH
        created = [r.case.created_at for r in page.rows]
        assert created == sorted(created, reverse=True)

        async with sessions() as session, session.begin():
            if session.bind.dialect.name == "postgresql":
                found = await plans(session, lambda s, p=principal: _list(s, p, one), STRICT)
            else:
                found = await _sqlite_plans(session, principal, one)
        # The bounded count and the page in one statement (store.cursor.counted), then the
        # divisions' names by their key.
        assert len(found) == 2, found
        plan, names = found
        assert "ix_cases_division_list" in plan, plan
        for read in found:
            assert "Seq Scan" not in read, read  # PostgreSQL
            assert "SCAN cases" not in read and "SCAN divisions" not in read, read  # SQLite
        assert "Sort" not in plan, plan  # PostgreSQL: read in index order
        assert "TEMP B-TREE" not in plan, plan  # SQLite: no sort either
        assert "divisions" in names, names
