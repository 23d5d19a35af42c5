"""The OpenAPI document is the truth: schemathesis, all checks, as creditor, partner and ops.

The app runs in a real uvicorn server on 127.0.0.1 (in the test's event loop, beside the
worker), and ``schemathesis run`` (configured by ``schemathesis.toml``) runs against it once per
actor, with a bounded number of examples and a fixed seed."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.support import Actor

ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
MAX_EXAMPLES = os.environ.get("CASELOOP_SCHEMATHESIS_EXAMPLES", "8")


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
        env={
            **os.environ,
            "NO_COLOR": "1",
            "PYTHONPATH": str(ROOT),
            "CASELOOP_API_KEY": actor.key,
        },
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
