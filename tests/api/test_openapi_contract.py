"""The OpenAPI document is the truth: schemathesis, all checks, as creditor, partner and ops.

The app runs in a real uvicorn server on 127.0.0.1 (in the test's event loop, beside the
worker), and ``schemathesis run`` (configured by ``schemathesis.toml``) runs against it once per
actor, with a bounded number of examples and a fixed seed."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from settings import Settings
from tests.support import Actor

ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
MAX_EXAMPLES = os.environ.get("CASELOOP_SCHEMATHESIS_EXAMPLES", "8")


@pytest.fixture
async def served(
    settings: Settings, dev_env: WorkflowEnvironment, worker: Worker
) -> AsyncIterator[str]:
    """The real app behind uvicorn on a free port of 127.0.0.1; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(settings, temporal=dev_env.client)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def schemathesis(base_url: str, actor: Actor, tmp_path: Path) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        str(SCHEMATHESIS),
        "--config-file",
        str(ROOT / "schemathesis.toml"),
        "run",
        f"{base_url}/openapi.json",
        "--max-examples",
        MAX_EXAMPLES,
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1", "CASELOOP_API_KEY": actor.key},
    )
    output, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


@pytest.mark.parametrize("role", ["creditor", "partner", "ops"])
async def test_schemathesis_finds_no_failure(
    role: str,
    served: str,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
    tmp_path: Path,
) -> None:
    actor = {"creditor": creditor, "partner": partner, "ops": ops}[role]
    code, output = await schemathesis(served, actor, tmp_path)
    assert code == 0, output
