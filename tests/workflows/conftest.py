"""Fixtures for running CaseWorkflow directly (no API in between)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from domain import search_attributes as sa
from tests.support import bundled_binary

# Creating a case writes about a dozen history events (start, update, projection activity, update
# completion). From this many events on, the server suggests continue-as-new; a fresh run starts
# with 3, so the carried-over run is not told to continue again.
SUGGEST_CONTINUE_AS_NEW_AT = 6


@pytest.fixture(scope="module")
async def short_history_env() -> AsyncIterator[WorkflowEnvironment]:
    """A dev server that suggests continue-as-new after a few events instead of 4,096.

    The workflow code is unchanged: it continues as new because the server really says so
    (``workflow.info().is_continue_as_new_suggested()``), as it would in production.
    """
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=bundled_binary("temporal"),
        data_converter=pydantic_data_converter,
        search_attributes=sa.ALL,
        dev_server_log_level="error",
        dev_server_extra_args=[
            "--dynamic-config-value",
            f"limit.historyCount.suggestContinueAsNew={SUGGEST_CONTINUE_AS_NEW_AT}",
        ],
    )
    yield env
    await env.shutdown()
