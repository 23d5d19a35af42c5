"""Every form that moves a case, as one table: the form's name, the API route whose own function
it runs (``portal.invoke``: same role rule, same body model, same errors), and what the page
says afterwards. The forms live on the case page (templates/_case_forms.html) and on the
solution pages of the tasks they solve (``SOLUTION_PAGES``)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from api.errors import Problem, not_found
from api.routes import case_commands, case_notes, case_work
from portal.actions import answer_of
from portal.invoke import invoke
from portal.pages.cases import render_case
from portal.rendering import redirect
from portal.security import PREFIX, PortalUser, check_csrf, form_fields

router = APIRouter()


@dataclass(frozen=True)
class CaseAction:
    route: Callable[..., Awaitable[Any]]
    notice: str  # a key of portal.actions.NOTICES
    leaves: bool = False  # the caller no longer sees the case afterwards (a partner rejecting)


CASE_ACTIONS: dict[str, CaseAction] = {
    "accept": CaseAction(case_commands.accept_case, "accepted"),
    "reject": CaseAction(case_commands.reject_case, "rejected", leaves=True),
    "status": CaseAction(case_commands.change_status, "status_changed"),
    "withdraw": CaseAction(case_commands.withdraw_case, "withdrawn"),
    "assign": CaseAction(case_commands.assign_partner, "partner_assigned"),
    "bank-account": CaseAction(case_commands.set_bank_account, "bank_account_set"),
    "correct": CaseAction(case_commands.correct_case, "corrected"),
    "survey": CaseAction(case_work.submit_survey, "survey_sent"),
    "resume": CaseAction(case_work.resume_case, "resumed"),
    "payment": CaseAction(case_work.record_payment, "payment_recorded"),
    "commission-payment": CaseAction(case_work.record_commission, "commission_recorded"),
    "partner-review": CaseAction(case_work.review_partner, "partner_reviewed"),
    "complaint": CaseAction(case_work.file_complaint, "complaint_filed"),
    "complaint-response": CaseAction(case_work.respond_to_complaint, "complaint_answered"),
    "quote-request": CaseAction(case_work.request_quotes, "quotes_requested"),
    "quote": CaseAction(case_work.submit_quote, "quoted"),
    "quote-decline": CaseAction(case_work.decline_quote, "quote_declined"),
    "quote-selection": CaseAction(case_work.select_quote, "quote_selected"),
    "note": CaseAction(case_notes.log_note, "note_logged"),
    "call": CaseAction(case_notes.log_call, "call_logged"),
}

# The task solution pages (domain.tasks CATALOGUE ``solution_path``) that are the case page
# opened at one of its forms.
SOLUTION_PAGES = {
    "review": "review",  # ReviewNewCase
    "survey": "survey",  # UpdateCaseStatus
    "review-partner": "partner-review",  # ReviewPartner
    "payments": "commission-payment",  # RecordPayment, ChasePayment
    "complaint": "complaint-response",  # RespondToComplaint
    "edit": "correct",  # CaseValidationNeedsInfo
}


@router.post("/cases/{case_id}/do/{action}", dependencies=[Depends(check_csrf)])
async def act(request: Request, principal: PortalUser, case_id: uuid.UUID, action: str) -> Response:
    found = CASE_ACTIONS.get(action)
    if found is None:
        raise not_found("Action")
    form = await request.form()
    answer = await answer_of(
        request,
        lambda session: invoke(
            found.route, request, principal, session, form=form, case_id=case_id
        ),
    )
    if isinstance(answer, Problem):
        return await render_case(
            request, principal, case_id, problem=answer, form=form_fields(form), open_form=action
        )
    if found.leaves:
        return redirect(f"{PREFIX}/cases?done={found.notice}")
    return redirect(f"{PREFIX}/cases/{case_id}?done={found.notice}")


@router.get("/cases/{case_id}/{page}")
async def solution_page(
    request: Request, principal: PortalUser, case_id: uuid.UUID, page: str
) -> Response:
    """A task's solution page: the case page with the form that solves it open."""
    form = SOLUTION_PAGES.get(page)
    if form is None:
        raise not_found("Page")
    return await render_case(request, principal, case_id, open_form=form)


@router.get("/leads/{case_id}/{page}")
async def lead_page(
    request: Request, principal: PortalUser, case_id: uuid.UUID, page: str
) -> Response:
    """ProvideQuote (``/leads/{id}/quote``) and SelectQuoteWinner (``/leads/{id}/quotes``)."""
    form = {"quote": "quote", "quotes": "quote-selection"}.get(page)
    if form is None:
        raise not_found("Page")
    return await render_case(request, principal, case_id, open_form=form)
