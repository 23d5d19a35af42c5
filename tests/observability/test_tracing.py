"""Tracing: one chat message is one trace through the API, the workflow and its projection."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from observability import tracing
from settings import Settings
from tests.api.test_chat import post_chat
from tests.api.test_status import in_collection
from tests.observability.collector import Received, otlp_collector
from tests.support import Actor
from worker import build_worker


@pytest.fixture
def collector() -> Any:
    with otlp_collector() as received:
        yield received


@pytest.fixture
def traced_settings(settings: Settings, collector: Received) -> Settings:
    return settings.model_copy(update={"otel_exporter_otlp_endpoint": collector.url})


@pytest.fixture
async def traced(
    traced_settings: Settings,
    dev_env: WorkflowEnvironment,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[tuple[httpx.AsyncClient, Callable[[], None]]]:
    """The app and a worker, traced as `caseloop api` and `caseloop worker` are (a provider
    each, exporting to the collector); yields the API client and a flush of both providers."""
    provider = tracing.tracer_provider(traced_settings, "worker")
    assert provider is not None
    client = Client(
        **{**dev_env.client.config(), "interceptors": tracing.temporal_interceptors(provider)}
    )
    app = create_app(traced_settings, temporal=client)

    def flush() -> None:
        provider.force_flush()
        app.state.tracer_provider.force_flush()

    transport = httpx.ASGITransport(app=app)
    async with (
        build_worker(client, task_queue=task_queue, sessions=sessions),
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t.test") as api,
    ):
        yield api, flush
    provider.shutdown()


def _ancestors(span: Span, by_id: dict[bytes, Span]) -> list[str]:
    names = []
    while span.parent_span_id and span.parent_span_id in by_id:
        span = by_id[span.parent_span_id]
        names.append(span.name)
    return names


async def test_one_chat_message_is_one_trace_through_the_api_the_workflow_and_the_projection(
    traced: tuple[httpx.AsyncClient, Callable[[], None]],
    collector: Received,
    creditor: Actor,
    partner: Actor,
    ops: Actor,
) -> None:
    api, flush = traced
    case = await in_collection(api, creditor, partner, ops)
    posted = await post_chat(api, partner, case["caseId"], "Traced message")
    assert posted.status_code == 201, posted.text
    assert (await api.get("/api/health")).status_code == 200
    flush()
    [request] = [
        s
        for s in collector.named("POST /api/cases/{case_id}/chats")
        if s.kind == Span.SpanKind.SPAN_KIND_SERVER
    ]
    trace = [s for _, s in collector.spans if s.trace_id == request.trace_id]
    by_id = {s.span_id: s for s in trace}
    names = {s.name for s in trace}
    assert any(n.startswith("StartWorkflowUpdate:") for n in names), names
    [handled] = [s for s in trace if s.name.startswith("HandleUpdate:")]
    [projection] = [s for s in trace if s.name == "RunActivity:project_case"]
    # Parent to parent: the projection, under the update's handling, under the API's request.
    chain = _ancestors(projection, by_id)
    assert handled.name in chain, chain
    assert request.name in chain, chain
    assert collector.services(request.trace_id) == {"caseloop-api", "caseloop-worker"}
    assert not collector.named("GET /api/health")  # polled by balancers: never traced


async def test_no_span_holds_a_query_string(
    traced: tuple[httpx.AsyncClient, Callable[[], None]],
    collector: Received,
    creditor: Actor,
) -> None:
    api, flush = traced
    listed = await api.get("/api/cases", params={"debtorName": "Jonas"}, headers=creditor.headers)
    assert listed.status_code == 200, listed.text
    flush()
    spans = collector.named("GET /api/cases")
    assert [s for s in spans if s.kind == Span.SpanKind.SPAN_KIND_SERVER]
    values = [str(a.value) for s in spans for a in s.attributes]
    assert not [v for v in values if "Jonas" in v], values
    assert any("/api/cases" in v for v in values), values


def test_without_an_endpoint_nothing_is_traced(settings: Settings) -> None:
    assert tracing.tracer_provider(settings, "api") is None
    assert tracing.temporal_interceptors(None) == []
    app = create_app(settings)
    assert app.state.tracer_provider is None
    assert not getattr(app, "_is_instrumented_by_opentelemetry", False)
