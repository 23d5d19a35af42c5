"""The caseloop worker: runs every workflow and activity on the configured task queue."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import uvloop
from google.protobuf.message import Message
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.common.v1 import Payloads
from temporalio.bridge.proto.workflow_activation import WorkflowActivation
from temporalio.bridge.proto.workflow_completion import WorkflowActivationCompletion
from temporalio.client import Client
from temporalio.converter import (
    ActivitySerializationContext,
    DataConverter,
    PayloadConverter,
    SerializationContext,
    StorageDriverStoreContext,
    WorkflowSerializationContext,
)
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    UnsandboxedWorkflowRunner,
    Worker,
    WorkflowInboundInterceptor,
    WorkflowInstance,
    WorkflowInstanceDetails,
    WorkflowInterceptorClassInput,
    WorkflowRunner,
)
from temporalio.worker.workflow_sandbox import (
    SandboxedWorkflowRunner,
    SandboxRestrictions,
)
from temporalio.workflow import Info, _Definition

from activities.accounts import AccountActivities
from activities.cleanup import CleanupActivities, ReplyClassifier
from activities.digests import DigestActivities
from activities.mail import MailActivities, SmtpConfig
from activities.notices import NoticeActivities
from activities.orphans import OrphanActivities
from activities.projection import ProjectionActivities
from activities.reply_model import ChatCompletionsClassifier
from activities.webhooks import DeliveryWaker, WebhookActivities
from observability import logs, tracing
from observability.collector import DomainCollector
from observability.server import MetricsServer
from observability.worker import (
    ActivityMetrics,
    WorkerHealth,
    free_loopback_port,
    sdk_metrics,
    sdk_runtime,
)
from schedules import ensure_schedules
from settings import Settings, get_settings
from store.db import create_engine, session_factory
from temporal_client import connect
from workflows.admission import RefuseWhileBlocked
from workflows.case import CaseWorkflow
from workflows.cleanup import ChatCleanupWorkflow
from workflows.creditor import CreditorWorkflow
from workflows.digests import DailySummaryWorkflow, OverdueReminderWorkflow
from workflows.mail import SendEmailWorkflow
from workflows.notices import NoticeWorkflow
from workflows.once import ApplyUpdatesOnce
from workflows.orphans import OrphanCheckWorkflow
from workflows.relationship import RelationshipWorkflow
from workflows.webhook_delivery import WebhookDeliveryWorkflow, WebhookRetentionWorkflow

WORKFLOWS = [
    CaseWorkflow,
    CreditorWorkflow,
    RelationshipWorkflow,
    ChatCleanupWorkflow,
    WebhookDeliveryWorkflow,
    WebhookRetentionWorkflow,
    SendEmailWorkflow,
    DailySummaryWorkflow,
    OverdueReminderWorkflow,
    NoticeWorkflow,
    OrphanCheckWorkflow,
]
# Part of the workflows' behaviour (an update id is applied once; a workflow whose read model
# cannot be written refuses new updates): the replayer needs them too. The first is outermost.
INTERCEPTORS = [ApplyUpdatesOnce(), RefuseWhileBlocked()]

# Libraries that pydantic validation calls inside workflows; they are deterministic and safe to
# share with the sandbox instead of being re-imported for every workflow run.
LIBRARIES = ("pydantic", "pydantic_core", "email_validator", "idna", "pycountry", "dns")
# The replay tests' runner: every workflow module is imported into each run's sandbox, so the
# sandbox's restrictions check the code of the modules that define workflows.
STRICT_WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules(*LIBRARIES)
)
# The worker's: no sandbox. Every module the workflows run was already shared with it (decision
# 0010), so it restricted none of their imports (only a few builtins) and cost each activation
# an ``exec`` behind its import hooks, and each run a sandbox of its own. The replay tests run
# every recorded history in the strict sandbox above, and tests/workflows/test_determinism.py
# reads the workflow modules: docs/decisions/0012-the-worker-runs-workflows-unsandboxed.md.
WORKFLOW_RUNNER: WorkflowRunner = UnsandboxedWorkflowRunner()


class ContextFreeRunner(WorkflowRunner):
    """Runs workflows with ``inner``, answering the SDK's per-payload questions itself.

    For every payload of every activation and completion (three passes each way), temporalio
    asks the workflow instance which serialization context the payload's command has, and a
    sandboxed instance answers by ``exec``-ing code inside the sandbox with its import hooks in
    place: a tenth of the worker's CPU per chat message. The answer only picks which converter
    encodes the payload, and caseloop's converter is the same in every context (no component
    takes one, no external storage): ``build_worker`` uses this runner only then
    (``takes_no_context``), and the workflow's own context is the answer for every payload.
    """

    def __init__(self, inner: WorkflowRunner) -> None:
        self.inner = inner

    def prepare_workflow(self, defn: _Definition) -> None:
        self.inner.prepare_workflow(defn)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return _ContextFreeInstance(self.inner.create_instance(det))

    def set_worker_level_failure_exception_types(
        self, types: Sequence[type[BaseException]]
    ) -> None:
        self.inner.set_worker_level_failure_exception_types(types)


class _ContextFreeInstance(WorkflowInstance):
    def __init__(self, inner: WorkflowInstance) -> None:
        self._inner = inner
        info = inner.get_info()
        self._context = WorkflowSerializationContext(
            namespace=info.namespace, workflow_id=info.workflow_id
        )
        self._store_context = StorageDriverStoreContext(target=None)

    def activate(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        return self._inner.activate(act)

    def get_serialization_context(self, command_info: Any) -> SerializationContext | None:
        return self._context

    def get_external_store_context(self, command_info: Any) -> StorageDriverStoreContext:
        return self._store_context

    def get_info(self) -> Info:
        return self._inner.get_info()

    def get_thread_id(self) -> int | None:
        return self._inner.get_thread_id()  # the deadlock detector reads it


# Read-only stand-ins a run keeps between activations, one for all runs: no previous run's
# result, and the completion the next activation replaces (the SDK reads and writes a
# completion only while an activation runs).
_NO_PAYLOADS = Payloads()
_IDLE_COMPLETION = WorkflowActivationCompletion()


def _detached(message: Any) -> Any:
    """A copy of a protobuf ``message`` that owns its memory. A message read from an activation
    shares the memory of the whole activation (every payload in it, before and after the codec),
    which lives as long as any part of it is referenced."""
    copy = type(message)()
    copy.CopyFrom(message)
    return copy


class ReleasingRunner(WorkflowRunner):
    """Runs workflows with ``inner``; a cached workflow keeps no activation or completion it is
    done with.

    The SDK keeps, for as long as a run stays cached, parts of its first activation (the
    previous run's result and the start headers: with them every payload of that activation,
    encrypted and decoded), its latest activation (in the sandbox's namespace) and its latest
    completion (every command payload of the last workflow task: the update's answer, search
    attributes): about 30 KiB of native memory per cached case (docs/performance.md, "Worker
    memory per cached case"). Each is used only while its activation runs; this runner lets
    them go when it returns, and ``ReleaseStartHeaders`` does for the start headers.
    """

    def __init__(self, inner: WorkflowRunner) -> None:
        self.inner = inner
        # One payload converter for all runs (by the factory the worker gives each run): the
        # SDK builds one per run, with its own cache of pydantic type adapters, and inside each
        # run's sandbox, where ``temporal_client.SharedPayloadConverter`` is a class of that
        # sandbox's own (its one-per-process instance serves the converters built outside).
        self._converters: dict[Callable[[], PayloadConverter], PayloadConverter] = {}

    def prepare_workflow(self, defn: _Definition) -> None:
        self.inner.prepare_workflow(defn)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        info = det.info
        factory = det.payload_converter_factory
        converter = self._converters.get(factory)
        if converter is None:
            converter = self._converters[factory] = factory()
        det = dataclasses.replace(
            det,
            info=dataclasses.replace(
                info,
                headers={name: _detached(value) for name, value in info.headers.items()},
                raw_memo={name: _detached(value) for name, value in info.raw_memo.items()},
            ),
            last_completion_result=_detached(det.last_completion_result)
            if det.last_completion_result.payloads
            else _NO_PAYLOADS,
            payload_converter_factory=lambda: converter,
        )
        return _ReleasingInstance(self.inner.create_instance(det))

    def set_worker_level_failure_exception_types(
        self, types: Sequence[type[BaseException]]
    ) -> None:
        self.inner.set_worker_level_failure_exception_types(types)


class _ReleasingInstance(WorkflowInstance):
    def __init__(self, inner: WorkflowInstance) -> None:
        self._inner = inner

    def activate(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        completion = self._inner.activate(act)
        sandbox = _sandbox_of(self._inner)
        if sandbox is None:  # the SDK's instance itself (an unsandboxed runner)
            _release_activation(self._inner)
        else:
            sandbox.globals_and_locals.pop("__temporal_activation", None)
            in_sandbox = sandbox.globals_and_locals.get("__temporal_in_sandbox")
            _release_activation(getattr(in_sandbox, "instance", None))
        return completion

    def get_serialization_context(self, command_info: Any) -> SerializationContext | None:
        return self._inner.get_serialization_context(command_info)

    def get_external_store_context(self, command_info: Any) -> StorageDriverStoreContext:
        return self._inner.get_external_store_context(command_info)

    def get_info(self) -> Info:
        return self._inner.get_info()

    def get_thread_id(self) -> int | None:
        return self._inner.get_thread_id()


def _release_activation(instance: Any) -> None:
    """Let the SDK's workflow instance keep no part of the activation it has just run."""
    if instance is None:
        return
    if isinstance(getattr(instance, "_current_completion", None), Message):
        # The next activation starts a new one; the worker holds this one meanwhile.
        instance._current_completion = _IDLE_COMPLETION
    # Parts of the activation the instance keeps until the next one: each would keep all of it.
    version = getattr(instance, "_deployment_version_for_current_task", None)
    if isinstance(version, Message):
        instance._deployment_version_for_current_task = _detached(version)
    flags = getattr(instance, "_current_internal_flags", None)
    if flags is not None and not isinstance(flags, tuple):
        instance._current_internal_flags = tuple(flags)


def _sandbox_of(instance: WorkflowInstance) -> Any:
    """The sandbox's own instance (None for a runner that is not the SDK's sandbox)."""
    return instance if hasattr(instance, "globals_and_locals") else None


class _ReleaseStartHeaders(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        # The SDK's own frame holds ``input`` for the whole run: let go of the activation.
        input.headers = {name: _detached(value) for name, value in input.headers.items()}
        return await super().execute_workflow(input)


class ReleaseStartHeaders(Interceptor):
    """Worker interceptor: the start headers a run keeps are copies (see ``ReleasingRunner``)."""

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return _ReleaseStartHeaders


def takes_no_context(converter: DataConverter) -> bool:
    """Whether ``converter`` encodes every payload the same whatever its serialization context
    (none of its parts changes with one) and stores none externally."""
    probes: list[SerializationContext] = [
        WorkflowSerializationContext(namespace="-", workflow_id="-"),
        ActivitySerializationContext(
            namespace="-",
            activity_id="-",
            activity_type="-",
            activity_task_queue="-",
            workflow_id="-",
            workflow_type="-",
            is_local=True,
        ),
    ]
    return converter.external_storage is None and all(
        converter.with_context(probe) is converter for probe in probes
    )


def build_worker(
    client: Client,
    *,
    task_queue: str,
    sessions: async_sessionmaker[AsyncSession],
    replace_activities: Sequence[Callable[..., Any]] = (),
    classifier: ReplyClassifier | None = None,
    settings: Settings | None = None,
    accounts: AccountActivities | None = None,
    webhooks: WebhookActivities | None = None,
    mail: MailActivities | None = None,
) -> Worker:
    """A worker with every workflow and activity; the tests build theirs the same way.

    ``settings`` gives the cache size and concurrency (``WORKER_MAX_*``); without it, the SDK's
    defaults, which are also the settings' defaults.

    ``replace_activities`` swaps real activities for others registered under the same name (tests
    use it to put a failing database in front of a projection); an unknown name is an error.
    ``classifier`` decides whether a stale chat task still needs a reply (default: the built-in
    offline one, or with CLEANUP_MODEL_BASE_URL in ``settings`` the model's, capped per night).
    ``accounts`` sends signals to other workflows, for the projections and the outboxes alike
    (tests put a failing one in).
    ``webhooks`` delivers webhooks (default: from ``settings``, else https to public
    addresses only and 30 days' retention; tests give one that may post to localhost).
    ``mail`` sends e-mail (default: through the SMTP server of ``settings``, else of the
    process's settings).
    """
    accounts = accounts or AccountActivities(client, task_queue)
    # It delivers what projections carry, and wakes the webhook deliveries they write.
    projection = ProjectionActivities(sessions, accounts, DeliveryWaker(client, task_queue))
    if webhooks is None:
        webhooks = (
            WebhookActivities(sessions)
            if settings is None
            else WebhookActivities(
                sessions,
                allow_localhost=settings.webhooks_allow_localhost,
                retention=timedelta(days=settings.webhooks_retention_days),
            )
        )
    concurrency: dict[str, Any] = (
        {}
        if settings is None
        else {
            "classify_concurrency": settings.cleanup_classify_concurrency,
            "dismiss_concurrency": settings.cleanup_dismiss_concurrency,
        }
    )
    if classifier is None and settings is not None and settings.cleanup_model_base_url:
        classifier = model_classifier(settings)
        concurrency["max_classified_per_night"] = settings.cleanup_model_max_calls_per_night
    cleanup = CleanupActivities(sessions, client, classifier, **concurrency)
    mail = mail or MailActivities(sessions, SmtpConfig.from_settings(settings or get_settings()))
    digest_settings = settings or get_settings()
    digests = DigestActivities(
        sessions,
        mail,
        morning_hour=digest_settings.daily_summary_hour,
        send_concurrency=digest_settings.digest_send_concurrency,
    )
    notices = NoticeActivities(sessions, mail.portal_base_url, send=mail.configured)
    orphans = OrphanActivities(
        sessions,
        client,
        stalled_after=timedelta(minutes=digest_settings.orphan_stalled_after_minutes),
    )
    activities: dict[str, Callable[..., Any]] = {
        _activity_name(fn): fn
        for fn in (
            projection.project_case,
            projection.project_account,
            projection.project_relationship,
            accounts.signal_creditor_account,
            accounts.release_cases,
            cleanup.clean_chat_page,
            webhooks.deliver_due,
            webhooks.prune_deliveries,
            mail.send_email,
            digests.send_daily_summaries,
            digests.send_overdue_reminders,
            notices.compose_email,
            orphans.check_orphans,
        )
    }
    for replacement in replace_activities:
        name = _activity_name(replacement)
        if name not in activities:
            raise ValueError(f"no activity named {name!r} to replace")
        activities[name] = replacement
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        workflow_runner=ContextFreeRunner(ReleasingRunner(WORKFLOW_RUNNER))
        if takes_no_context(client.data_converter)
        else ReleasingRunner(WORKFLOW_RUNNER),
        # ActivityMetrics: activity and projection latency and failures (observability/).
        interceptors=[*INTERCEPTORS, ReleaseStartHeaders(), ActivityMetrics()],
        activities=list(activities.values()),
        # On SIGTERM/SIGINT, running activities (projections) get this long to finish.
        graceful_shutdown_timeout=timedelta(seconds=10),
        **(_capacity(settings) if settings is not None else {}),
    )


def model_classifier(settings: Settings) -> ChatCompletionsClassifier:
    """The nightly cleanup's classifier for CLEANUP_MODEL_BASE_URL (docs/operations.md)."""
    key = settings.cleanup_model_api_key
    return ChatCompletionsClassifier(
        base_url=settings.cleanup_model_base_url,
        model=settings.cleanup_model,
        api_key=key.get_secret_value() if key is not None else None,
        api_key_header=settings.cleanup_model_api_key_header,
        timeout_seconds=settings.cleanup_model_timeout_seconds,
        min_confidence=settings.cleanup_model_min_confidence,
    )


def _capacity(settings: Settings) -> dict[str, Any]:
    """The worker's cache size and concurrency from the settings (docs/operations.md)."""
    return {
        "max_cached_workflows": settings.worker_max_cached_workflows,
        "max_concurrent_workflow_tasks": settings.worker_max_concurrent_workflow_tasks,
        "max_concurrent_activities": settings.worker_max_concurrent_activities,
        "max_concurrent_local_activities": settings.worker_max_concurrent_local_activities,
    }


def _activity_name(fn: Callable[..., Any]) -> str:
    definition = getattr(fn, "__temporal_activity_definition", None)
    if definition is None or definition.name is None:
        raise ValueError(f"{fn!r} is not a named @activity.defn")
    return str(definition.name)


HEALTH_CHECK_SECONDS = 15  # how often the worker asks Temporal when it last polled


async def run(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Poll until SIGINT or SIGTERM (or ``stop`` is set), then finish the tasks in hand and stop.

    With WORKER_METRICS_PORT (docs/operations.md, "Metrics"): ``/metrics`` (caseloop's metrics,
    the domain gauges and the Temporal SDK's) and ``/healthz`` on METRICS_HOST at that port."""
    metrics_on = settings.worker_metrics_port > 0
    sdk_port = free_loopback_port() if metrics_on else 0
    # Off (None) unless an OTLP endpoint is configured (observability/tracing.py).
    tracer_provider = tracing.tracer_provider(settings, "worker")
    client = await connect(
        settings,
        runtime=sdk_runtime(sdk_port) if metrics_on else None,
        interceptors=tracing.temporal_interceptors(tracer_provider),
    )
    engine = create_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
    )
    sessions = session_factory(engine)
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
    health = WorkerHealth(client, settings.temporal_task_queue, client.identity)
    collector = DomainCollector(sessions, client)
    server: MetricsServer | None = None
    watchers: list[asyncio.Task[None]] = []
    try:
        worker = build_worker(
            client, task_queue=settings.temporal_task_queue, sessions=sessions, settings=settings
        )
        if metrics_on:
            REGISTRY.register(collector)
            server = MetricsServer(
                settings.metrics_host,
                settings.worker_metrics_port,
                extra=lambda: sdk_metrics(sdk_port),
                health=health.report,
            ).start()
        async with worker:
            health.running = True
            if metrics_on:
                watchers.append(asyncio.create_task(health.watch(HEALTH_CHECK_SECONDS)))
                if settings.metrics_collect_seconds > 0:
                    watchers.append(
                        asyncio.create_task(collector.watch(settings.metrics_collect_seconds))
                    )
            await ensure_schedules(client, task_queue=settings.temporal_task_queue)
            logging.info("worker polling task queue %r", settings.temporal_task_queue)
            await stop.wait()
            logging.info("worker stopping")
            health.running = False
    finally:
        for watcher in watchers:
            watcher.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        if server is not None:
            server.stop()
            REGISTRY.unregister(collector)
        await engine.dispose()
        if tracer_provider is not None:
            tracer_provider.shutdown()  # exports the spans still buffered


def main() -> None:
    settings = get_settings()
    logs.configure(settings, "worker")
    # uvloop's event loop: the worker's loop wakes for every poll, activation, local activity
    # and database call; uvloop costs about a tenth less worker CPU per full case than asyncio's
    # own loop (docs/performance.md, "The worker on uvloop").
    uvloop.run(run(settings))


if __name__ == "__main__":
    main()
