"""Workflow code uses no clock, randomness, I/O or threads of its own (docs/decisions/0010).

The worker shares the workflow modules with the sandbox, and most of them (handler groups, the
task book, the main loop) were never imported inside it, so the sandbox cannot be what keeps
them deterministic. This reads every module in ``workflows/`` instead: ``workflow.now()``,
``workflow.random()``, ``workflow.uuid4()`` and activities are the way to these things.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

WORKFLOWS = sorted((Path(__file__).parents[2] / "workflows").glob("*.py"))
FORBIDDEN_IMPORTS = {"os", "random", "socket", "subprocess", "threading", "time", "secrets"}
# Attribute calls whose last two names are these (``dt.datetime.now()``, ``uuid.uuid4()``, ...).
FORBIDDEN_CALLS = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("uuid", "uuid1"),
    ("uuid", "uuid4"),
    ("asyncio", "sleep"),
}
FORBIDDEN_NAMES = {"open", "input", "print", "uuid4", "uuid1"}


def offences(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names.append(node.module)
            found += [
                f"line {node.lineno}: import {n}"
                for n in names
                if n.split(".")[0] in FORBIDDEN_IMPORTS
            ]
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_NAMES:
                found.append(f"line {node.lineno}: {func.id}()")
            elif isinstance(func, ast.Attribute):
                owner = func.value
                owner_name = (
                    owner.id
                    if isinstance(owner, ast.Name)
                    else owner.attr
                    if isinstance(owner, ast.Attribute)
                    else None
                )
                if (owner_name, func.attr) in FORBIDDEN_CALLS:
                    found.append(f"line {node.lineno}: {owner_name}.{func.attr}()")
    return found


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.name for p in WORKFLOWS])
def test_workflow_module_uses_no_clock_randomness_io_or_threads(path: Path) -> None:
    assert offences(path.read_text()) == []


def test_the_check_finds_a_clock_a_random_id_a_file_and_a_thread() -> None:
    source = (
        "import threading\nimport datetime as dt\nfrom uuid import uuid4\n"
        "def f():\n    dt.datetime.now()\n    uuid4()\n    open('x')\n"
    )
    assert offences(source) == [
        "line 1: import threading",
        "line 5: datetime.now()",
        "line 6: uuid4()",
        "line 7: open()",
    ]
