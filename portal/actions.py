"""Acting from a page: the portal calls the API's own commands (the same route functions, with
the signed-in user as the caller), so every rule, check and error is the API's.

A command's ``Problem`` (or a body that fails the API's own model) comes back to the page as
the message to show beside its form; nothing is changed then, exactly as for the API."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import serving
from api.errors import FieldError, Problem, validation_problem

# What a page may say after a successful action (redirects carry the key, never the text).
NOTICES = {
    "postponed": "The deadline is postponed; the original deadline is kept.",
    "assigned": "The task is reassigned.",
    "unassigned": "The task is unassigned.",
    "done": "Marked as done.",
    "closed": "The task is closed.",
    "created": "The task is created.",
    "signed": "The contract is signed. Every case that waited for it moves on.",
    "registered": "The bank account is registered.",
    "bank_account_set": "The bank account is set on the case.",
    "accepted": "You accepted the case. It is now in collection.",
    "rejected": "You rejected the case.",
    "status_changed": "The status is changed.",
    "withdrawn": "The case is withdrawn.",
    "partner_assigned": "The case is assigned to the partner.",
    "corrected": "The case data is corrected.",
    "survey_sent": "The monthly update is sent.",
    "resumed": "The case is resumed.",
    "payment_recorded": "The payment is recorded.",
    "commission_recorded": "The commission payment is recorded.",
    "partner_reviewed": "Thank you: your review is recorded.",
    "complaint_filed": "Your complaint is filed; the partner must answer it.",
    "complaint_answered": "Your answer to the complaint is sent.",
    "quotes_requested": "Quotes are requested from the partners.",
    "quoted": "Your quote is sent.",
    "quote_declined": "You declined to quote.",
    "quote_selected": "The quote is selected; the case goes to that partner.",
    "note_logged": "The note is logged.",
    "call_logged": "The call is logged.",
    "sent": "Your message is sent.",
}


def notice_of(request: Request) -> str | None:
    return NOTICES.get(request.query_params.get("done", ""))


def problem_messages(problem: Problem) -> list[str]:
    """What to show for a refused action: the detail, then each field's message."""
    messages = [problem.detail]
    for error in problem.errors:
        field = error.get("field", "")
        messages.append(f"{field}: {error.get('message', '')}" if field else error["message"])
    return messages


async def run(
    request: Request, command: Callable[[AsyncSession], Awaitable[Any]]
) -> Problem | None:
    """Run an API command in a session of its own; its Problem if it refused, else None."""
    answer = await answer_of(request, command)
    return answer if isinstance(answer, Problem) else None


async def answer_of(request: Request, command: Callable[[AsyncSession], Awaitable[Any]]) -> Any:
    """Run an API command in a session of its own: its Problem if it refused, else its JSON
    answer (decoded) or whatever else it returned.

    A command answers a refusal by raising a Problem, or (behind the API's idempotency
    wrapper) by returning it as a problem+json response: both come back as the Problem."""
    async with request.app.state.sessions() as session:
        with serving(session):
            try:
                answer = await command(session)
            except Problem as problem:
                return problem
            except ValidationError as exc:
                return validation_problem(exc.errors())
    if isinstance(answer, Response):
        if answer.status_code >= 400:
            return _problem_of(answer)
        return json.loads(bytes(answer.body)) if answer.body else None
    return answer


def _problem_of(response: Response) -> Problem:
    body = json.loads(bytes(response.body)) if response.body else {}
    return Problem(
        response.status_code,
        str(body.get("code", "error")),
        str(body.get("detail", "The action was refused.")),
        errors=[
            FieldError(e.get("field", ""), e.get("message", "")) for e in body.get("errors", [])
        ],
    )
