"""Forms become the API's own bodies: nested fields, lists and integers as a JSON client sends
them, and a page can call only routes whose parameters it knows how to give."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.datastructures import FormData

from api.chat_views import CallEntry
from api.deps import end_read, request_session
from api.routes.case_commands import CaseCorrection
from api.routes.case_work import QuoteRequest, ReviewEntry
from portal.actions import answer_of
from portal.invoke import _parameters, body_from_form


def test_nested_fields_and_empty_ones_are_left_out() -> None:
    body = body_from_form(
        CaseCorrection,
        FormData([("debtor.name", "Hansen ApS"), ("debtor.city", ""), ("csrf_token", "x")]),
    )
    assert body.model_dump(exclude_unset=True) == {"debtor": {"name": "Hansen ApS"}}


def test_a_repeated_or_list_field_is_a_list() -> None:
    one = "6d1f5b8e-3f0e-4c47-9a37-111111111111"
    two = "6d1f5b8e-3f0e-4c47-9a37-222222222222"
    assert len(body_from_form(QuoteRequest, FormData([("partnerIds", one)])).partner_ids) == 1
    both = body_from_form(QuoteRequest, FormData([("partnerIds", one), ("partnerIds", two)]))
    assert [str(p) for p in both.partner_ids] == [one, two]


def test_integer_fields_are_read_as_integers_and_bad_ones_still_fail_the_model() -> None:
    assert body_from_form(ReviewEntry, {"rating": "7"}).rating == 7  # type: ignore[attr-defined]
    assert body_from_form(CallEntry, {"durationSeconds": "95", "outcome": "Reached"}) is not None
    with pytest.raises(ValueError):
        body_from_form(ReviewEntry, {"rating": "seven"})


def test_parameters_name_what_a_route_needs() -> None:
    async def route(case_id: int, body: ReviewEntry) -> None: ...

    assert [name for name, _, _ in _parameters(route)] == ["case_id", "body"]


async def test_an_action_run_from_a_page_serves_its_session_as_the_requests(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """So ``api.deps.end_read`` ends its read before the action waits on Temporal, as for an
    API request, and the page holds no database connection meanwhile."""
    request = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(sessions=sessions)))
    seen: list[object] = []

    async def command(session: AsyncSession) -> None:
        seen.append(request_session() is session)
        await session.execute(text("SELECT 1"))
        await end_read()
        seen.append(session.in_transaction())

    assert await answer_of(request, command) is None  # type: ignore[arg-type]
    assert seen == [True, False]
    assert request_session() is None
