"""`make run`'s stack end to end: real processes, real ports, data kept across restarts."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import bundled_binary

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def stack_env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "TEMPORAL_ADDRESS": f"127.0.0.1:{_free_port()}",
        "TEMPORAL_UI_PORT": str(_free_port()),
        "API_PORT": str(_free_port()),
        "VAR_DIR": str(tmp_path / "var"),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'var' / 'caseloop.db'}",
        "TEMPORAL_TASK_QUEUE": "caseloop-stack-test",
    }


class Stack:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.api = f"http://127.0.0.1:{env['API_PORT']}"
        # A file, not a pipe: nobody reads a pipe while the stack runs, and a full pipe would
        # block every process writing to it.
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (lives as long as the stack)
        self.process = subprocess.Popen(
            [str(BIN / "caseloop"), "dev"],
            env=env,
            start_new_session=True,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait_healthy(self, seconds: float = 60) -> float:
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            assert self.process.poll() is None, self.output()
            try:
                if httpx.get(f"{self.api}/api/health", timeout=2).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"not healthy within {seconds}s:\n{self.output()}")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        return self.process.wait(60)

    def output(self) -> str:
        """Everything the stack printed (stopping it first, so the log is complete)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.log.seek(0)
        return self.log.read()[-20_000:]


@pytest.fixture
def stack(stack_env: dict[str, str]) -> Iterator[Stack]:
    running = Stack(stack_env)
    yield running
    if running.process.poll() is None:
        running.process.kill()
        running.process.wait()


def _run(argv: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_dev_stack_serves_api_ui_and_demo_and_keeps_data(
    stack: Stack, stack_env: dict[str, str]
) -> None:
    assert stack.wait_healthy() < 60
    ui = httpx.get(f"http://127.0.0.1:{stack_env['TEMPORAL_UI_PORT']}/", timeout=5)
    assert ui.status_code == 200

    demo = _run([str(BIN / "caseloop"), "demo", "--api-url", stack.api], stack_env)
    case_id = demo.split("Demo case")[1].split()[0]
    creditor_key = demo.split("Demo creditor")[1].split("key")[1].split()[0]
    headers = {"Authorization": f"Bearer {creditor_key}"}
    case = httpx.get(f"{stack.api}/api/cases/{case_id}", headers=headers, timeout=5)
    assert case.status_code == 200
    assert case.json()["status"] == "Created"

    listed = _run(
        [
            bundled_binary("temporal"),
            "workflow",
            "list",
            "--address",
            stack_env["TEMPORAL_ADDRESS"],
            "--query",
            "CaseStatus='Created'",
            "--output",
            "json",
        ],
        stack_env,
    )
    assert f"case-{case_id}" in {wf["execution"]["workflowId"] for wf in json.loads(listed)}

    assert stack.stop() == 0, stack.output()

    again = Stack(stack_env)
    try:
        again.wait_healthy()
        after = httpx.get(f"{again.api}/api/cases/{case_id}", headers=headers, timeout=5)
        assert after.status_code == 200, "the read model survives a restart"
        listed = _run(
            [
                bundled_binary("temporal"),
                "workflow",
                "list",
                "--address",
                stack_env["TEMPORAL_ADDRESS"],
                "--query",
                f"WorkflowId='case-{case_id}'",
                "--output",
                "json",
            ],
            stack_env,
        )
        assert json.loads(listed), "the workflow survives a restart"
    finally:
        assert again.stop() == 0, again.output()
