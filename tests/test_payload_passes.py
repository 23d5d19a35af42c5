"""The worker walks an activation's payloads once each way when nothing is stored externally
(payload_passes.py), and leaves a converter with external storage to the SDK's five walks.

Counts, not times: how many times the SDK's payload visitor walked the activations and
completions of a recorded case's replay. bench.replay_ab measures what it saves.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import temporalio.bridge.worker as bridge_worker
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.worker._command_aware_visitor import CommandAwarePayloadVisitor

import payload_passes
import worker
from tests.support import TEST_DATA_CONVERTER

HISTORY = Path(__file__).parent / "replay" / "histories" / "case_lifecycle.json"


async def test_a_replayed_case_walks_each_activation_and_completion_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert payload_passes.installed()  # importing the worker installs it
    walks = {"decode": 0, "encode": 0, "visits": 0}
    visit = CommandAwarePayloadVisitor.visit
    decode, encode = bridge_worker.decode_activation, bridge_worker.encode_completion

    async def counted_visit(self: Any, fs: Any, root: Any) -> None:
        walks["visits"] += 1
        await visit(self, fs, root)

    async def counted_decode(*args: Any, **kwargs: Any) -> Any:
        walks["decode"] += 1
        return await decode(*args, **kwargs)

    async def counted_encode(*args: Any, **kwargs: Any) -> Any:
        walks["encode"] += 1
        return await encode(*args, **kwargs)

    monkeypatch.setattr(CommandAwarePayloadVisitor, "visit", counted_visit)
    monkeypatch.setattr(bridge_worker, "decode_activation", counted_decode)
    monkeypatch.setattr(bridge_worker, "encode_completion", counted_encode)
    replayer = Replayer(
        workflows=worker.WORKFLOWS,
        data_converter=TEST_DATA_CONVERTER,
        workflow_runner=worker.ContextFreeRunner(worker.ReleasingRunner(worker.WORKFLOW_RUNNER)),
        interceptors=worker.INTERCEPTORS,
    )
    history = WorkflowHistory.from_json("payload-passes", HISTORY.read_text())
    await replayer.replay_workflow(history)  # still replays, encrypted payloads and all

    assert walks["decode"] > 5 and walks["encode"] > 5  # a real case, many activations
    # The SDK's own functions: three walks per activation and three per completion.
    assert walks["visits"] == walks["decode"] + walks["encode"]


async def test_a_converter_with_external_storage_gets_the_sdks_walks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handed: list[str] = []

    async def sdk_decode(*args: Any) -> str:
        handed.append("decode")
        return "sdk"

    async def sdk_encode(*args: Any) -> str:
        handed.append("encode")
        return "sdk"

    monkeypatch.setattr(payload_passes, "_sdk_decode_activation", sdk_decode)
    monkeypatch.setattr(payload_passes, "_sdk_encode_completion", sdk_encode)
    storing = SimpleNamespace(external_storage=object())
    assert await payload_passes.decode_activation(object(), storing, True, 1) == "sdk"
    assert await payload_passes.encode_completion(object(), storing, True, 1) == "sdk"
    assert handed == ["decode", "encode"]


def test_an_sdk_whose_functions_changed_stops_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    async def decode_activation(activation: Any, data_converter: Any) -> None:
        """As if an SDK upgrade dropped parameters."""

    monkeypatch.setattr(payload_passes, "_sdk_decode_activation", decode_activation)
    monkeypatch.setattr(bridge_worker, "decode_activation", decode_activation)
    with pytest.raises(RuntimeError, match="check payload_passes"):
        payload_passes.install()
    assert bridge_worker.decode_activation is decode_activation  # left as it was
