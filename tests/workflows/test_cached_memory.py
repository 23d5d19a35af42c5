"""What a cached case keeps in the worker between its workflow tasks (worker.ReleasingRunner).

The SDK keeps parts of a run's first activation, its latest activation and its latest
completion for as long as the run is cached; each protobuf part keeps the memory of the whole
message it came from (every payload, before and after the codec). Counts, not sizes of the
process: the activation and completion messages alive in the worker once its cases are idle.
bench/memory.py measures what it saves (docs/operations.md, "Worker capacity"). The recorded
histories replay through the releasing runner too: nothing it lets go of is needed later.
"""

from __future__ import annotations

import asyncio
import gc
from collections import Counter
from pathlib import Path

import pytest
from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.converter import PayloadConverter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

import worker as caseloop_worker
from domain.cases import CorrectCaseInput
from tests.replay.test_replay import HISTORIES, load
from tests.support import TEST_DATA_CONVERTER, Actor
from tests.workflows.test_intake import open_case
from workflows.case import CaseWorkflow

CASES = 3
# The messages one activation or its completion is made of; any part kept keeps all of it.
ACTIVATION_PACKAGES = ("coresdk.workflow_activation.", "coresdk.workflow_completion.")
EMPTY_BYTES = 8


def held_activation_messages() -> Counter[str]:
    """Activation and completion messages alive, by type (an empty one, a fresh completion
    waiting for the next activation, is not counted), and payload converters."""
    gc.collect()
    held: Counter[str] = Counter()
    for obj in gc.get_objects():
        if isinstance(obj, PayloadConverter):
            held["payload converters"] += 1
        if isinstance(obj, Message) and obj.ByteSize() > EMPTY_BYTES:
            name = type(obj).DESCRIPTOR.full_name
            if name.startswith(ACTIVATION_PACKAGES):
                held[name] += 1
    return held


async def settled_activation_messages() -> Counter[str]:
    """``held_activation_messages`` once the worker is idle: two counts in a row agree (an
    activation or a data converter still in flight when the update answers is not kept)."""
    last = held_activation_messages()
    for _ in range(30):
        await asyncio.sleep(0.1)
        now = held_activation_messages()
        if now == last:
            return now
        last = now
    return last


async def test_idle_cached_cases_keep_none_of_their_activations_and_share_one_converter(
    dev_env: WorkflowEnvironment,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    creditor: Actor,
) -> None:
    worker = caseloop_worker.build_worker(dev_env.client, task_queue=task_queue, sessions=sessions)

    async def open_and_correct() -> None:
        handle, record = await open_case(dev_env, creditor, task_queue)
        submission = record.submission.model_copy(update={"claim_description": "Corrected."})
        await handle.execute_update(
            CaseWorkflow.correct_case,
            CorrectCaseInput(submission=submission, user_id=creditor.principal.user_id),
        )

    async with worker:
        await open_and_correct()  # the first case also starts its creditor's account workflow
        before = await settled_activation_messages()
        for _ in range(CASES):
            await open_and_correct()
        after = await settled_activation_messages()
    grown = after - before
    # Nothing per cached case: at most the one activation the worker's poll loop received
    # last, and its completion.
    assert grown["coresdk.workflow_activation.InitializeWorkflow"] == 0, grown
    assert grown["coresdk.workflow_activation.WorkflowActivation"] <= 1, grown
    assert grown["coresdk.workflow_completion.WorkflowActivationCompletion"] <= 1, grown
    # One payload converter (with its pydantic type adapters) for all of them.
    assert grown["payload converters"] == 0, grown


@pytest.mark.parametrize("path", HISTORIES, ids=[path.name for path in HISTORIES])
async def test_recorded_histories_replay_when_each_activation_is_released(path: Path) -> None:
    # A whole run through one instance, as a cached case lives in the worker: nothing the
    # runner lets go of between activations is needed by the next one.
    replayer = Replayer(
        workflows=caseloop_worker.WORKFLOWS,
        data_converter=TEST_DATA_CONVERTER,
        workflow_runner=caseloop_worker.ReleasingRunner(caseloop_worker.WORKFLOW_RUNNER),
        interceptors=[*caseloop_worker.INTERCEPTORS, caseloop_worker.ReleaseStartHeaders()],
    )
    await replayer.replay_workflow(load(path))  # raises on any nondeterminism
