"""Every recorded workflow history must replay on today's workflow code, deterministically."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner

import worker
from domain.accounts import CaseAccountEvent, CreditorWorkflowInput
from domain.cases import CaseRecord, CaseState, CaseWorkflowInput, SubmitCaseInput
from tests.support import TEST_DATA_CONVERTER

HISTORIES_DIR = Path(__file__).parent / "histories"
HISTORIES = sorted(HISTORIES_DIR.glob("*.json"))


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(f"replay-{path.stem}", path.read_text())


def test_recorded_histories_are_present() -> None:
    # An empty folder would make the replay test below pass without checking anything.
    names = [path.name for path in HISTORIES]
    assert "case_intake.json" in names
    assert "creditor_account.json" in names
    assert "case_lifecycle.json" in names
    assert "relationship_chat.json" in names
    assert "chat_cleanup.json" in names
    assert "webhook_delivery.json" in names


@pytest.mark.parametrize("path", HISTORIES, ids=[path.name for path in HISTORIES])
async def test_recorded_history_replays_on_current_workflow_code(path: Path) -> None:
    replayer = Replayer(
        workflows=worker.WORKFLOWS,
        data_converter=TEST_DATA_CONVERTER,
        # The workflow modules inside the sandbox (the worker shares them): the sandbox's
        # restrictions check them here (docs/decisions/0010).
        workflow_runner=worker.STRICT_WORKFLOW_RUNNER,
        interceptors=worker.INTERCEPTORS,
    )
    await replayer.replay_workflow(load(path))  # raises on any nondeterminism


@workflow.defn(name="CaseWorkflow", sandboxed=False)
class CaseWorkflowChangedWithoutPatch:
    """CaseWorkflow as if someone added a timer before its first step, without
    ``workflow.patched``: exactly what the replay test exists to catch."""

    @workflow.init
    def __init__(self, input: CaseWorkflowInput) -> None:
        self.state = input.state or CaseState(record=input.record)

    @workflow.run
    async def run(self, input: CaseWorkflowInput) -> None:
        await workflow.sleep(timedelta(minutes=1))
        await workflow.wait_condition(lambda: False)

    @workflow.update
    async def submit(self, input: SubmitCaseInput) -> CaseRecord:
        await workflow.wait_condition(lambda: self.state.projected_version >= 1)
        return self.state.record


@workflow.defn(name="CreditorWorkflow", sandboxed=False)
class CreditorWorkflowChangedWithoutPatch:
    """CreditorWorkflow with the same unpatched change."""

    @workflow.init
    def __init__(self, input: CreditorWorkflowInput) -> None:
        self.events: list[CaseAccountEvent] = []

    @workflow.run
    async def run(self, input: CreditorWorkflowInput) -> None:
        await workflow.sleep(timedelta(minutes=1))
        await workflow.wait_condition(lambda: False)

    @workflow.signal
    def case_opened(self, event: CaseAccountEvent) -> None:
        self.events.append(event)


@pytest.mark.parametrize(
    ("history", "changed"),
    [
        ("case_intake.json", CaseWorkflowChangedWithoutPatch),
        ("creditor_account.json", CreditorWorkflowChangedWithoutPatch),
    ],
)
async def test_replay_fails_when_workflow_code_changes_without_a_patch(
    history: str, changed: type
) -> None:
    replayer = Replayer(
        workflows=[changed],
        data_converter=TEST_DATA_CONVERTER,
        workflow_runner=UnsandboxedWorkflowRunner(),
    )
    with pytest.raises(workflow.NondeterminismError):
        await replayer.replay_workflow(load(HISTORIES_DIR / history))
