"""Signals between a case and its creditor's account workflow (signal-with-start to the
account, ``contract_signed`` back to the cases), and how the API starts a creditor-partner
pair's workflow (with its first general-chat message)."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any
from uuid import UUID

from temporalio import activity
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from domain import search_attributes as sa
from domain.accounts import AccountSignal, CreditorWorkflowInput, OrgRef
from domain.chat import RelationshipWorkflowInput
from domain.ids import case_workflow_id, creditor_workflow_id, relationship_workflow_id

# Signals a release sends at the same time (a creditor may have many cases waiting).
RELEASE_CONCURRENCY = 16


def creditor_start_options(creditor: OrgRef, *, task_queue: str) -> dict[str, Any]:
    """Start options of a creditor's account workflow: joined if it already runs."""
    return {
        "id": creditor_workflow_id(creditor.id),
        "task_queue": task_queue,
        "id_conflict_policy": WorkflowIDConflictPolicy.USE_EXISTING,
        "search_attributes": TypedSearchAttributes(
            [SearchAttributePair(sa.CREDITOR_ID, str(creditor.id))]
        ),
        "static_summary": f"Creditor account {creditor.name or creditor.id}",
    }


def relationship_start(
    creditor: OrgRef, partner: OrgRef, *, linked_at: dt.datetime, task_queue: str
) -> WithStartWorkflowOperation[Any, Any]:
    """Start of a creditor-partner pair's workflow, joined if it already runs: the API sends the
    pair's general-chat messages as update-with-start with it, so the workflow starts with the
    first one (``linked_at``: the pair's row, written by the case that linked it)."""
    return WithStartWorkflowOperation(
        "RelationshipWorkflow",
        RelationshipWorkflowInput(creditor=creditor, partner=partner, linked_at=linked_at),
        id=relationship_workflow_id(creditor.id, partner.id),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(sa.CREDITOR_ID, str(creditor.id)),
                SearchAttributePair(sa.PARTNER_ID, str(partner.id)),
            ]
        ),
        static_summary=(
            f"Relationship {creditor.name or creditor.id} ↔ {partner.name or partner.id}"
        ),
    )


async def start_creditor_workflow_with_signal(
    client: Client, *, task_queue: str, signal: AccountSignal
) -> None:
    """Deliver ``signal`` to ``creditor-{id}``, starting that workflow if it is not running."""
    await client.start_workflow(
        "CreditorWorkflow",
        CreditorWorkflowInput(creditor=signal.creditor),
        start_signal=signal.name,
        start_signal_args=[signal.event],
        **creditor_start_options(signal.creditor, task_queue=task_queue),
    )


class AccountActivities:
    """Activities that talk to other workflows through the Temporal client. The projection
    activities call the same methods (``tell_account``, ``release``) for what a projection
    carries (``ProjectionActivities``)."""

    def __init__(self, client: Client, task_queue: str) -> None:
        self._client = client
        self._task_queue = task_queue

    async def tell_account(self, signal: AccountSignal) -> None:
        """Tell the creditor's account workflow about a case (signal-with-start)."""
        await start_creditor_workflow_with_signal(
            self._client, task_queue=self._task_queue, signal=signal
        )

    async def release(self, case_ids: list[UUID]) -> None:
        """Tell each case that its creditor's contract is signed (``contract_signed``, which a
        case takes once). A case whose workflow no longer runs has nothing to release."""
        limit = asyncio.Semaphore(RELEASE_CONCURRENCY)

        async def release(case_id: UUID) -> None:
            async with limit:
                try:
                    await self._client.get_workflow_handle(case_workflow_id(case_id)).signal(
                        "contract_signed"
                    )
                except RPCError as error:
                    if error.status != RPCStatusCode.NOT_FOUND:
                        raise
                    activity.logger.warning("case %s is gone; not released", case_id)

        await asyncio.gather(*(release(case_id) for case_id in case_ids))

    @activity.defn
    async def signal_creditor_account(self, signal: AccountSignal) -> None:
        """``tell_account``, for a signal the case's projection did not deliver."""
        await self.tell_account(signal)

    @activity.defn
    async def release_cases(self, case_ids: list[UUID]) -> None:
        """``release``, for cases the account's projection did not release."""
        await self.release(case_ids)
