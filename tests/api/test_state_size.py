"""A case's state stays small: what continue-as-new carries is a few kilobytes.

The figure is the JSON the worker's payload converter writes for ``CaseWorkflowInput``, before
the codec encrypts it (encryption adds a fixed header and tag to each payload).
"""

from __future__ import annotations

import uuid

import httpx
from temporalio.testing import WorkflowEnvironment

from domain.cases import CaseState, CaseWorkflowInput
from domain.ids import case_workflow_id
from domain.update_ids import REMEMBERED_MOST
from tests.api.test_chat import post_chat
from tests.api.test_status import in_collection, move, pay
from tests.support import TEST_DATA_CONVERTER, Actor
from workflows.case import CaseWorkflow

CAN_INPUT_LIMIT = 10 * 1024


def a_key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def continue_as_new_input_bytes(env: WorkflowEnvironment, case_id: str) -> int:
    """The size of the input the case's workflow would continue as new with, now."""
    handle = env.client.get_workflow_handle(case_workflow_id(uuid.UUID(case_id)))
    state: CaseState = await handle.query(CaseWorkflow.get_state)
    [payload] = TEST_DATA_CONVERTER.payload_converter.to_payloads([CaseWorkflowInput(state=state)])
    return len(payload.data)


async def chat(
    api: httpx.AsyncClient, creditor: Actor, partner: Actor, case_id: str, messages: int
) -> None:
    for n in range(messages):
        actor = partner if n % 2 else creditor
        text = f"Message {n}: the debtor called back and asked for the invoice again."
        answer = await post_chat(api, actor, case_id, text, headers=a_key())
        assert answer.status_code == 201, answer.text


async def test_a_typical_cases_continue_as_new_input_is_at_most_10_kb(
    api: httpx.AsyncClient,
    dev_env: WorkflowEnvironment,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    # The full-case scenario (create, contract, bank account, assign, accept, two messages, a
    # status change), then some weeks of ordinary work: a dozen more messages, a payment, a
    # pause and its end; messages and the payment sent with an Idempotency-Key.
    cid = (await in_collection(api, creditor, partner, ops))["caseId"]
    await chat(api, creditor, partner, cid, 2)
    moved = await move(api, partner, cid, status="In Collection", subStatus="First reminder sent")
    assert moved.status_code == 200, moved.text
    await chat(api, creditor, partner, cid, 12)
    assert (await pay(api, partner, cid, "500.00", headers=a_key())).status_code == 201
    paused = await move(
        api, partner, cid, status="On Hold", subStatus="Paused", waitingFor="Creditor", note="?"
    )
    assert paused.status_code == 200, paused.text
    resumed = await api.post(f"/api/cases/{cid}/resume", json={}, headers=partner.headers)
    assert resumed.status_code == 200, resumed.text

    assert await continue_as_new_input_bytes(dev_env, cid) <= CAN_INPUT_LIMIT


async def test_a_busy_cases_continue_as_new_input_stays_at_most_10_kb(
    api: httpx.AsyncClient,
    dev_env: WorkflowEnvironment,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    # More keyed messages within a day than the workflow remembers ids of.
    cid = (await in_collection(api, creditor, partner, ops))["caseId"]
    await chat(api, creditor, partner, cid, REMEMBERED_MOST + 16)
    assert await continue_as_new_input_bytes(dev_env, cid) <= CAN_INPUT_LIMIT
