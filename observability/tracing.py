"""Tracing with OpenTelemetry: off unless an OTLP endpoint is configured (docs/operations.md).

With ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) set, the API and
the worker export spans over OTLP/HTTP (protobuf) to it, and one user action is one trace: the
API's request span (FastAPI's instrumentation), the Temporal client's call (the SDK's
``temporalio.contrib.opentelemetry`` interceptor), the workflow's handling of the update, and
the projection local activity that writes the read model.

The SDK's interceptor puts a workflow's spans in the trace of the request that *started* the
workflow and only links an update's call to it: a chat message posted months after the case was
created would not be one trace. ``ActionTracing`` keeps the SDK's spans and changes where two of
them go: an update's ``HandleUpdate`` span is a child of the caller's span, and the next local
activity the workflow starts (the projection of what the update changed, decision 0009) is a
child of that. When several updates share a workflow task, the projection follows the last.

Without an endpoint nothing is installed: no middleware, no interceptor, no span processor.
Spans never carry a query string (it may hold personal data, e.g. ``debtorName``): see
``redact_query_strings``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import opentelemetry.trace
import temporalio.api.common.v1
import temporalio.worker
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from temporalio.contrib.opentelemetry import TracingInterceptor, TracingWorkflowInboundInterceptor
from temporalio.contrib.opentelemetry._context import attached_context
from temporalio.contrib.opentelemetry._interceptor import _TracingWorkflowOutboundInterceptor

from api.access_log import loggable_path
from settings import Settings

TRACES_PATH = "/v1/traces"
# Span attributes that hold a request's target with its query string (old and new semantic
# conventions): they keep the path only.
_TARGET_ATTRIBUTES = ("http.target", "http.url", "url.full", "url.path")
_QUERY_ATTRIBUTES = ("url.query",)


def traces_endpoint(settings: Settings) -> str | None:
    """Where spans go (OTLP/HTTP), or None: tracing is off."""
    if settings.otel_exporter_otlp_traces_endpoint:
        return settings.otel_exporter_otlp_traces_endpoint
    if settings.otel_exporter_otlp_endpoint:
        return settings.otel_exporter_otlp_endpoint.rstrip("/") + TRACES_PATH
    return None


def redact_query_strings(span: Any, scope: dict[str, Any]) -> None:
    """A request span's target loses its query string (and the codec endpoint's token): the
    access log's rule. FastAPI's instrumentation calls it once it has set the request's
    attributes, before the span can be exported."""
    if not span.is_recording():
        return
    attributes = getattr(span, "attributes", None) or {}
    for key in _TARGET_ATTRIBUTES:
        value = attributes.get(key)
        if isinstance(value, str):
            span.set_attribute(key, _without_query(value))
    for key in _QUERY_ATTRIBUTES:
        if key in attributes:
            span.set_attribute(key, "")


def _without_query(target: str) -> str:
    scheme, separator, rest = target.partition("://")
    if not separator:
        return loggable_path(target)
    host, slash, path = rest.partition("/")
    return f"{scheme}://{host}{loggable_path(slash + path) if slash else ''}"


def tracer_provider(settings: Settings, service: str) -> TracerProvider | None:
    """A provider exporting to the configured endpoint, named ``caseloop-<service>`` unless
    OTEL_SERVICE_NAME says otherwise; None when tracing is off. Not installed globally: the API
    and the worker hand it to what they instrument."""
    endpoint = traces_endpoint(settings)
    if endpoint is None:
        return None
    # Imported only when tracing is on (it pulls in an HTTP client).
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    name = settings.otel_service_name or f"caseloop-{service}"
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return provider


def temporal_interceptors(provider: TracerProvider | None) -> list[Any]:
    """The Temporal client's interceptors for ``provider`` (none when tracing is off); a
    worker built on that client gets the workflow and activity halves too."""
    if provider is None:
        return []
    return [ActionTracing(provider.get_tracer("caseloop.temporal"))]


class ActionTracing(TracingInterceptor):
    """The SDK's tracing interceptor, with a workflow's handling of an update and its
    projection in the caller's trace (module doc)."""

    def workflow_interceptor_class(
        self, input: temporalio.worker.WorkflowInterceptorClassInput
    ) -> type[TracingWorkflowInboundInterceptor]:
        super().workflow_interceptor_class(input)  # registers the span extern
        return _ActionInbound


@dataclass
class _Headers:
    """What ``_completed_span`` writes a new span's context into."""

    headers: Mapping[str, temporalio.api.common.v1.Payload] = field(default_factory=dict)


class _ActionInbound(TracingWorkflowInboundInterceptor):
    def __init__(self, next: temporalio.worker.WorkflowInboundInterceptor) -> None:
        super().__init__(next)
        # The context of the last update handled (a span's carrier), until a local activity
        # (its projection) starts under it. Not workflow state: only spans read it, and on
        # replay no span is made, so it stays empty.
        self.action: Mapping[str, temporalio.api.common.v1.Payload] | None = None

    def init(self, outbound: temporalio.worker.WorkflowOutboundInterceptor) -> None:
        # The SDK's outbound, with ours called before it (it reads the context ours attaches).
        temporalio.worker.WorkflowInboundInterceptor.init(
            self, _ActionOutbound(_TracingWorkflowOutboundInterceptor(outbound, self), self)
        )

    async def handle_update_handler(self, input: temporalio.worker.HandleUpdateInput) -> Any:
        caller = self._context_from(input.headers)
        if caller is None:
            return await super().handle_update_handler(input)
        with attached_context(self._set_on_context(caller)):
            span = _Headers()
            self._completed_span(
                f"HandleUpdate:{input.update}",
                link_context_carrier=self._load_workflow_context_carrier(),
                add_to_outbound=span,
                kind=opentelemetry.trace.SpanKind.SERVER,
            )
            if self.header_key in span.headers:
                self.action = span.headers
            return await temporalio.worker.WorkflowInboundInterceptor.handle_update_handler(
                self, input
            )

    def _context_from(
        self, headers: Mapping[str, temporalio.api.common.v1.Payload]
    ) -> Context | None:
        header = headers.get(self.header_key)
        if not header:
            return None
        carrier = self.payload_converter.from_payloads([header])[0]
        return self.text_map_propagator.extract(carrier) if carrier else None


class _ActionOutbound(temporalio.worker.WorkflowOutboundInterceptor):
    def __init__(
        self, next: temporalio.worker.WorkflowOutboundInterceptor, root: _ActionInbound
    ) -> None:
        super().__init__(next)
        self.root = root

    def start_local_activity(
        self, input: temporalio.worker.StartLocalActivityInput
    ) -> temporalio.workflow.ActivityHandle[Any]:
        action, self.root.action = self.root.action, None
        context = self.root._context_from(action) if action is not None else None
        if context is None:
            return super().start_local_activity(input)
        with attached_context(self.root._set_on_context(context)):
            return super().start_local_activity(input)


def instrument(app: Any, provider: TracerProvider) -> None:
    """Trace every request of ``app`` (FastAPI's instrumentation: one server span per request,
    named by its route), except the health checks ops and load balancers poll."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        excluded_urls=",".join(UNTRACED_PATHS),
        server_request_hook=redact_query_strings,
    )


# Polled every few seconds by load balancers and Prometheus: a trace each would drown the rest.
UNTRACED_PATHS = ("/api/health", "/metrics")
