"""`caseloop doctor` passes on a healthy stack and names what is wrong on a broken one: a
missing or mistyped search attribute, a missing schedule, an old migration, missing settings."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from alembic.script import ScriptDirectory
from google.protobuf.duration_pb2 import Duration
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.testing import WorkflowEnvironment

from domain import search_attributes as sa
from schedules import ensure_schedules
from settings import Settings
from store.migrate import alembic_config, upgrade
from tests.ops.test_reproject import caseloop, cli_env
from tests.support import TEST_DATA_CONVERTER

# The newest migration: what a healthy database is at.
LATEST = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


async def namespace_with(
    dev_env: WorkflowEnvironment, attributes: dict[str, IndexedValueType.ValueType]
) -> Client:
    """A new namespace on the dev server with these search attributes; a client of it."""
    namespace = f"doctor-{uuid.uuid4().hex[:8]}"
    service = dev_env.client.workflow_service
    await service.register_namespace(
        RegisterNamespaceRequest(
            namespace=namespace, workflow_execution_retention_period=Duration(seconds=86400)
        )
    )
    client = await Client.connect(
        dev_env.client.service_client.config.target_host,
        namespace=namespace,
        data_converter=TEST_DATA_CONVERTER,
    )
    operator = dev_env.client.operator_service
    for _ in range(100):  # the new namespace takes a moment to be known everywhere
        try:
            if attributes:
                await operator.add_search_attributes(
                    AddSearchAttributesRequest(namespace=namespace, search_attributes=attributes)
                )
            listed = await operator.list_search_attributes(
                ListSearchAttributesRequest(namespace=namespace)
            )
            if set(attributes) <= set(listed.custom_attributes):
                return client
        except Exception:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError(f"namespace {namespace} not ready")


def typed(key: SearchAttributeKey) -> IndexedValueType.ValueType:  # type: ignore[type-arg]
    return IndexedValueType.ValueType(key.indexed_value_type)


def env_for(settings: Settings, dev_env: WorkflowEnvironment, client: Client) -> dict[str, str]:
    return {
        **cli_env(settings, dev_env),
        "TEMPORAL_NAMESPACE": client.namespace,
        "TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
        "PORTAL_SECRET_KEY": "x" * 40,
        "SMTP_HOST": "localhost",
        "SMTP_SECURITY": "none",
    }


async def test_doctor_passes_on_a_healthy_stack(
    dev_env: WorkflowEnvironment, settings: Settings
) -> None:
    client = await namespace_with(dev_env, {key.name: typed(key) for key in sa.ALL})
    for _ in range(50):
        try:
            await ensure_schedules(client, task_queue=settings.temporal_task_queue)
            break
        except Exception:
            await asyncio.sleep(0.2)

    result = await caseloop(env_for(settings, dev_env, client), "doctor")

    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.output
    assert "all checks passed" in result.output
    for key in sa.ALL:
        assert f"ok    Temporal: search attribute {key.name}" in result.output
    assert "ok    Temporal: schedule chat-cleanup" in result.output
    assert f"ok    database: at the latest migration ({LATEST})" in result.output


async def test_doctor_names_a_missing_and_a_mistyped_search_attribute_and_missing_schedules(
    dev_env: WorkflowEnvironment, settings: Settings
) -> None:
    attributes = {key.name: typed(key) for key in sa.ALL if key is not sa.PROJECTION_BLOCKED}
    attributes[sa.OVERDUE_TASK_COUNT.name] = IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
    client = await namespace_with(dev_env, attributes)

    result = await caseloop(env_for(settings, dev_env, client), "doctor")

    assert result.exit_code == 1, result.output
    out = result.output
    assert "FAIL  Temporal: search attribute ProjectionBlocked (Bool): not registered" in out
    assert (
        f"temporal operator search-attribute create --namespace {client.namespace} "
        "--name ProjectionBlocked --type Bool" in out
    )
    assert "FAIL  Temporal: search attribute OverdueTaskCount (Int): registered as Keyword" in out
    assert "ok    Temporal: search attribute CaseStatus (Keyword)" in out
    assert "FAIL  Temporal: schedule chat-cleanup: missing" in out
    assert "ok    database: at the latest migration" in out


async def test_doctor_names_an_old_migration_and_an_unknown_namespace(
    dev_env: WorkflowEnvironment, settings: Settings, tmp_path: Path
) -> None:
    old = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(old, "0015")
    env = {**env_for(settings, dev_env, dev_env.client), "DATABASE_URL": old}
    env["TEMPORAL_NAMESPACE"] = "no-such-namespace"

    result = await caseloop(env, "doctor")

    assert result.exit_code == 1, result.output
    assert f"FAIL  database: migrations: at 0015; the latest is {LATEST}" in result.output
    assert "fix: caseloop db upgrade" in result.output
    assert "FAIL  Temporal: namespace no-such-namespace: does not exist" in result.output


async def test_doctor_names_missing_settings(
    dev_env: WorkflowEnvironment, settings: Settings
) -> None:
    env = {**env_for(settings, dev_env, dev_env.client), "PAYLOAD_KEYS": "", "SMTP_HOST": ""}
    env["PORTAL_SECRET_KEY"] = ""

    result = await caseloop(env, "doctor")

    assert result.exit_code == 1, result.output
    assert "FAIL  settings: PAYLOAD_KEYS: not set" in result.output
    assert "FAIL  settings: PORTAL_SECRET_KEY: not set" in result.output
    assert "FAIL  settings: SMTP: SMTP_HOST is not set" in result.output
