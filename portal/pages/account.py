"""The creditor's account: sign the collection contract, register bank accounts and set them on
the cases that wait for one. The solution pages of SignContract (``/account/contract``) and
AssignBankAccount (``/account/bank-accounts``). Each form runs the API's own command."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from api.errors import Problem
from api.routes import account as account_routes
from api.routes import bank_accounts as bank_routes
from portal.actions import notice_of, problem_messages, run
from portal.invoke import invoke
from portal.rendering import redirect, render
from portal.security import PREFIX, PortalUser, check_csrf, form_fields
from store import cases as case_store
from store.accounts import Principal

router = APIRouter()
LISTED_CASES = 100


async def render_account(
    request: Request,
    principal: Principal,
    *,
    focus: str = "contract",
    problem: Problem | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    async with request.app.state.sessions() as session:
        status = await invoke(account_routes.get_account, request, principal, session)
        accounts = await invoke(bank_routes.list_bank_accounts, request, principal, session)
        waiting = await case_store.cases_without_bank_account(
            session=session, creditor_id=principal.org_id, limit=LISTED_CASES
        )
    return render(
        request,
        "account.html",
        status_code=problem.status if problem else 200,
        section="account",
        focus=focus,
        account=status,
        bank_accounts=accounts,
        waiting=waiting,
        listed_limit=LISTED_CASES,
        notice=None if problem else notice_of(request),
        errors=problem_messages(problem) if problem else [],
        form=form or {},
    )


@router.get("/account", response_class=HTMLResponse)
async def account_page(request: Request, principal: PortalUser) -> Response:
    return await render_account(request, principal)


@router.get("/account/contract", response_class=HTMLResponse)
async def contract_page(request: Request, principal: PortalUser) -> Response:
    return await render_account(request, principal, focus="contract")


@router.get("/account/bank-accounts", response_class=HTMLResponse)
async def bank_accounts_page(request: Request, principal: PortalUser) -> Response:
    return await render_account(request, principal, focus="bank-accounts")


@router.post("/account/contract/sign", dependencies=[Depends(check_csrf)])
async def sign(request: Request, principal: PortalUser) -> Response:
    problem = await run(
        request,
        lambda session: invoke(account_routes.sign_contract, request, principal, session),
    )
    if problem is not None:
        return await render_account(request, principal, problem=problem)
    return redirect(f"{PREFIX}/account/contract?done=signed")


@router.post("/account/bank-accounts", dependencies=[Depends(check_csrf)])
async def register_bank_account(request: Request, principal: PortalUser) -> Response:
    form = await request.form()
    fields = form_fields(form)
    problem = await run(
        request,
        lambda session: invoke(
            bank_routes.create_bank_account, request, principal, session, form=form
        ),
    )
    if problem is not None:
        return await render_account(
            request, principal, focus="bank-accounts", problem=problem, form=fields
        )
    return redirect(f"{PREFIX}/account/bank-accounts?done=registered")
