"""The creditor's account: contract signing (standing in for the e-signature callback)."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from temporalio.client import WithStartWorkflowOperation

from activities.accounts import creditor_start_options
from api.deps import CreditorPrincipal, SessionDep, SettingsDep, TemporalDep
from api.idempotency import idempotent
from api.workflow_calls import call, update_id
from domain.accounts import CreditorWorkflowInput, SignContractInput
from domain.base import ApiModel
from store.models import Organisation
from workflows.creditor import CreditorWorkflow

router = APIRouter(prefix="/account", tags=["account"])


class AccountStatus(ApiModel):
    creditor_id: str
    name: str
    contract_signed: bool
    contract_signed_at: dt.datetime | None


async def _status(session: SessionDep, org_id: object) -> AccountStatus:
    session.expire_all()
    org = await session.get(Organisation, org_id)
    assert org is not None
    return AccountStatus(
        creditor_id=str(org.id),
        name=org.name,
        contract_signed=org.contract_signed_at is not None,
        contract_signed_at=org.contract_signed_at,
    )


@router.get("", response_model=AccountStatus)
async def get_account(principal: CreditorPrincipal, session: SessionDep) -> AccountStatus:
    """Your creditor account: is the collection contract signed?"""
    return await _status(session, principal.org_id)


@router.post("/contract/sign", response_model=AccountStatus, responses={403: {}})
async def sign_contract(
    request: Request,
    principal: CreditorPrincipal,
    session: SessionDep,
    client: TemporalDep,
    settings: SettingsDep,
) -> Response:
    """Record the signed contract; every case waiting for it moves on and SignContract is solved.

    Stands in for the e-signature provider's callback. Signing again changes nothing.
    """

    async def execute() -> Response:
        creditor = principal.org_ref
        start = WithStartWorkflowOperation(
            CreditorWorkflow.run,
            CreditorWorkflowInput(creditor=creditor),
            **creditor_start_options(creditor, task_queue=settings.temporal_task_queue),
        )
        await call(
            client.execute_update_with_start_workflow(
                CreditorWorkflow.sign_contract,
                SignContractInput(user_id=principal.user_id),
                start_workflow_operation=start,
                id=update_id(request, principal),
                rpc_timeout=dt.timedelta(seconds=settings.api_update_timeout_seconds),
            )
        )
        return JSONResponse((await _status(session, principal.org_id)).model_dump(mode="json"))

    return await idempotent(request, principal, {}, execute)
