"""Record the history of a real CaseWorkflow run for the replay tests.

    .venv/bin/python -m tests.replay.record [NAME]

Starts a Temporal dev server from the bundled binary, runs a real worker against a temporary
SQLite read model, creates one case the way ``POST /api/cases`` does and writes the workflow's
history to ``tests/replay/histories/NAME.json`` (default ``case_created``). An existing file is
never overwritten: old histories must keep replaying (see README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from domain import search_attributes as sa
from domain.enums import OrgKind
from store.db import create_engine, session_factory
from store.migrate import upgrade
from tests.support import bundled_binary, case_start, make_actor, new_case_record, submit_case
from worker import build_worker

HISTORIES = Path(__file__).parent / "histories"
TASK_QUEUE = "replay-record"


async def record_case_created() -> str:
    """Create one case through a real worker; its workflow history as JSON."""
    with tempfile.TemporaryDirectory(prefix="caseloop-record-") as folder:
        database_url = f"sqlite:///{Path(folder) / 'caseloop.db'}"
        upgrade(database_url)
        engine = create_engine(database_url)
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=bundled_binary("temporal"),
            data_converter=pydantic_data_converter,
            search_attributes=sa.ALL,
            dev_server_log_level="error",
        )
        try:
            sessions = session_factory(engine)
            creditor = await make_actor(sessions, OrgKind.CREDITOR)
            start = case_start(new_case_record(creditor), task_queue=TASK_QUEUE)
            async with build_worker(env.client, task_queue=TASK_QUEUE, sessions=sessions):
                await submit_case(env.client, start, requested_by=creditor.principal.user_id)
                history = await (await start.workflow_handle()).fetch_history()
        finally:
            await env.shutdown()
            await engine.dispose()
    return history.to_json() + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?", default="case_created", help="file name, without .json")
    target = HISTORIES / f"{parser.parse_args().name}.json"
    if target.exists():
        sys.exit(f"{target} exists; recorded histories are never overwritten, choose a new name")
    HISTORIES.mkdir(parents=True, exist_ok=True)
    target.write_text(asyncio.run(record_case_created()))
    print(f"recorded {target}")


if __name__ == "__main__":
    main()
