"""The worker answers the SDK's per-payload serialization-context questions without asking the
workflow instance (a sandboxed one answered by running code inside it), when caseloop's
converter is the same in every context (worker.ContextFreeRunner).

Counts, not times: how often the sandboxed instance was asked while a case was created and
changed. bench/ measures what it saves.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec, SerializationContext, WithSerializationContext
from temporalio.testing import WorkflowEnvironment
from temporalio.worker._workflow_instance import _WorkflowInstanceImpl
from temporalio.worker.workflow_sandbox import _runner as sandbox_runner

import worker as caseloop_worker
from domain.cases import CorrectCaseInput
from tests.support import TEST_DATA_CONVERTER, Actor
from tests.workflows.test_intake import open_case
from workflows.case import CaseWorkflow


class ContextCodec(PayloadCodec, WithSerializationContext):
    """A codec that changes with its context (as one keyed per workflow would)."""

    def __init__(self, context: SerializationContext | None = None) -> None:
        self.context = context

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)

    def with_context(self, context: SerializationContext) -> ContextCodec:
        return ContextCodec(context)


def test_caseloop_s_converter_takes_no_context_and_one_that_does_keeps_the_sdk_s_answers() -> None:
    assert caseloop_worker.takes_no_context(TEST_DATA_CONVERTER)
    keyed = dataclasses.replace(TEST_DATA_CONVERTER, payload_codec=ContextCodec())
    assert not caseloop_worker.takes_no_context(keyed)


async def test_a_case_s_payloads_are_encoded_without_asking_the_workflow_instance_for_their_context(
    dev_env: WorkflowEnvironment,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[Any] = []
    # Whichever instance the worker's runner makes (the SDK's own, or the sandbox's around it).
    for instance_class in (sandbox_runner._Instance, _WorkflowInstanceImpl):
        original = instance_class.get_serialization_context

        def counted(self: Any, command_info: Any, original: Any = original) -> Any:
            asked.append(command_info)
            return original(self, command_info)

        monkeypatch.setattr(instance_class, "get_serialization_context", counted)
    worker = caseloop_worker.build_worker(dev_env.client, task_queue=task_queue, sessions=sessions)
    assert isinstance(worker.config()["workflow_runner"], caseloop_worker.ContextFreeRunner)
    async with worker:
        handle, record = await open_case(dev_env, creditor, task_queue)
        submission = record.submission.model_copy(update={"claim_description": "Corrected."})
        corrected = await handle.execute_update(
            CaseWorkflow.correct_case,
            CorrectCaseInput(submission=submission, user_id=creditor.principal.user_id),
        )
        state = await handle.query(CaseWorkflow.get_state)
    assert corrected.submission.claim_description == "Corrected."
    assert state.projected_version == state.version
    assert asked == []
