"""One way to connect to Temporal, used by the API, the worker, the CLI and the tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from temporalio.client import Client, Interceptor, WithStartWorkflowOperation
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy
from temporalio.contrib.pydantic import PydanticPayloadConverter, pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.runtime import Runtime
from temporalio.service import RetryConfig, TLSConfig

from codec import EncryptionCodec, PayloadKeyError, parse_keys
from domain import search_attributes as sa
from domain.cases import CaseRecord, CaseWorkflowInput
from domain.enums import CaseStatus
from domain.ids import case_workflow_id
from settings import Settings
from workflows.case import CaseWorkflow


def _tls(settings: Settings) -> TLSConfig | bool:
    if settings.temporal_tls_client_cert or settings.temporal_tls_server_ca_cert:
        return TLSConfig(
            client_cert=_read(settings.temporal_tls_client_cert),
            client_private_key=_read(settings.temporal_tls_client_key),
            server_root_ca_cert=_read(settings.temporal_tls_server_ca_cert),
        )
    if settings.temporal_tls is not None:
        return settings.temporal_tls
    return settings.temporal_api_key is not None  # Temporal Cloud refuses plaintext


def _read(path: Path | None) -> bytes | None:
    return Path(str(path)).read_bytes() if path else None


# The API's calls: a Temporal server that stopped answers within about a second, so in-flight
# requests fail fast (503 temporal_unavailable) and clients retry, instead of the SDK retrying
# for up to 10 s while the request waits.
FAIL_FAST_RETRIES = RetryConfig(
    initial_interval_millis=100,
    max_interval_millis=500,
    max_elapsed_time_millis=1500,
    max_retries=4,
)


class SharedPayloadConverter(PydanticPayloadConverter):
    """temporalio's pydantic payload converter, one instance per process.

    The SDK builds a payload converter from its class for every ``DataConverter`` it makes
    (twice per workflow activation: ``_CommandAwareDataConverter``) and for every workflow run
    it caches, and each pydantic converter starts its own cache of type adapters: about 5 % of
    the worker's event-loop CPU went into building them, and every cached case held adapters of
    its own. The converter holds no per-payload state (a serializer and a thread-safe cache of
    ``TypeAdapter``s), so every one of those is this one instance.
    """

    _instance: SharedPayloadConverter | None = None

    def __new__(cls) -> SharedPayloadConverter:
        if cls._instance is None:
            instance = super().__new__(cls)
            PydanticPayloadConverter.__init__(instance)
            cls._instance = instance
        return cls._instance

    def __init__(self) -> None:
        pass  # built once, in ``__new__``


def data_converter(settings: Settings) -> DataConverter:
    """caseloop's one data converter: pydantic JSON, then encrypted with PAYLOAD_KEYS (codec.py).

    Failure messages and stack traces go into the encrypted payload too (they may quote case
    data). Without PAYLOAD_KEYS this refuses, so nothing is ever written in clear by accident;
    only PAYLOAD_ENCRYPTION=false stores new payloads unencrypted (keys, if set, still decrypt).
    """
    if settings.payload_keys is None:
        if settings.payload_encryption:
            raise PayloadKeyError(
                "PAYLOAD_KEYS is not set: caseloop encrypts every workflow payload and does not "
                "start without a key. Set PAYLOAD_KEYS=<id>:<base64 of 32 bytes> (print one with "
                "`caseloop payload-key`), or PAYLOAD_ENCRYPTION=false to store payloads in clear."
            )
        return pydantic_data_converter
    codec = EncryptionCodec(
        parse_keys(settings.payload_keys.get_secret_value()),
        encrypt=settings.payload_encryption,
    )
    return dataclasses.replace(
        pydantic_data_converter,
        payload_converter_class=SharedPayloadConverter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


async def connect(
    settings: Settings,
    *,
    lazy: bool = False,
    fail_fast: bool = False,
    interceptors: Sequence[Interceptor] = (),
    runtime: Runtime | None = None,
) -> Client:
    """A client with caseloop's data converter. ``lazy`` defers the connection to first use;
    ``fail_fast`` gives up on an unreachable server quickly (the API; the worker keeps trying);
    ``interceptors``: tracing's, when it is on (observability/tracing.py), which a worker on
    this client runs too; ``runtime``: the worker's, which exports the SDK's metrics
    (observability/worker.py)."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        api_key=settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None,
        tls=_tls(settings),
        data_converter=data_converter(settings),
        lazy=lazy,
        retry_config=FAIL_FAST_RETRIES if fail_fast else None,
        interceptors=interceptors,
        runtime=runtime,
    )


def case_start_operation(
    record: CaseRecord,
    *,
    task_queue: str,
    history_limit: int | None = None,
    contract_signed: bool = False,
) -> WithStartWorkflowOperation:
    """How a new case's workflow is started (joined, if it already runs). ``history_limit``
    makes it continue as new sooner than the server suggests (tests force long lives with it).
    ``contract_signed``: the read model shows the creditor's contract signed."""
    return WithStartWorkflowOperation(
        CaseWorkflow.run,
        CaseWorkflowInput(
            record=record, history_limit=history_limit, contract_signed=contract_signed
        ),
        id=case_workflow_id(record.case_id),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(sa.CASE_STATUS, CaseStatus.CREATED.value),
                SearchAttributePair(sa.CREDITOR_ID, str(record.creditor_id)),
            ]
        ),
        static_summary=(
            f"Case {record.case_number} (creditor reference {record.submission.creditor_reference})"
        ),
    )
