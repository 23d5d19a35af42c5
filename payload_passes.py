"""One walk over an activation's payloads each way, when nothing is stored externally.

temporalio 1.35 walks every workflow activation three times with its pure-Python payload
visitor before the workflow runs (``temporalio.bridge.worker.decode_activation``: the codec
over external-storage references, the external-storage retrieval, the codec), and every
completion three times after it (``encode_completion``: the codec, the external-storage store,
the codec over the references the store made). With no external storage configured, all the
passes but the codec's do nothing to any payload: the reference passes only look for reference
markers (and raise on one, since nothing could resolve it, or encode the references nothing
made), the storage passes hand each payload sequence back as it was. caseloop configures no
external storage (``worker.takes_no_context`` holds it for the worker's converter), so four of
the six walks per activation were spent finding nothing: about 55 µs of CPU per activation,
decoding and encoding together (``bench.payload_passes_ab``; docs/performance.md, "Issue 10's
seventh session").

``install`` replaces the two functions, in the module the SDK's workflow worker calls them
through, with versions that run the codec's walk alone when the data converter has no
external storage, with the same visitor options, and hand everything else to the SDK's own
functions. A payload that carries an external-storage reference (no caseloop process writes
one) then reaches the codec and the payload converter as it is, and fails the workflow task
there, as the reference pass would have failed it. ``install`` checks the functions' parameters
first, so an SDK upgrade that changes them fails the worker's start (and
``tests/test_payload_passes.py``) instead of being walked around.
"""

from __future__ import annotations

import inspect
from typing import Any

import temporalio.bridge.worker as bridge_worker
import temporalio.converter._extstore as extstore
from temporalio.worker._command_aware_visitor import CommandAwarePayloadVisitor

_DECODE = ("activation", "data_converter", "decode_headers", "storage_concurrency_limit")
_ENCODE = ("completion", "data_converter", "encode_headers", "storage_concurrency_limit")


async def decode_activation(
    activation: Any,
    data_converter: Any,
    decode_headers: bool,
    storage_concurrency_limit: int,
) -> extstore.StorageOperationMetrics:
    """``temporalio.bridge.worker.decode_activation``: the codec's walk alone without external
    storage (module doc), the SDK's three otherwise."""
    if data_converter.external_storage is not None:
        return await _sdk_decode_activation(
            activation, data_converter, decode_headers, storage_concurrency_limit
        )
    await CommandAwarePayloadVisitor(
        skip_search_attributes=True, skip_headers=not decode_headers
    ).visit(bridge_worker._Visitor(data_converter._decode_payload_sequence), activation)
    return extstore.StorageOperationMetrics()


async def encode_completion(
    completion: Any,
    data_converter: Any,
    encode_headers: bool,
    storage_concurrency_limit: int,
) -> extstore.StorageOperationMetrics:
    """``temporalio.bridge.worker.encode_completion``: the codec's walk alone without external
    storage (module doc), the SDK's three otherwise."""
    if data_converter.external_storage is not None:
        return await _sdk_encode_completion(
            completion, data_converter, encode_headers, storage_concurrency_limit
        )
    await CommandAwarePayloadVisitor(
        skip_search_attributes=True, skip_headers=not encode_headers
    ).visit(bridge_worker._Visitor(data_converter._encode_payload_sequence), completion)
    return extstore.StorageOperationMetrics()


_sdk_decode_activation = bridge_worker.decode_activation
_sdk_encode_completion = bridge_worker.encode_completion


def _parameters(function: Any) -> tuple[str, ...]:
    return tuple(inspect.signature(function).parameters)


def install() -> None:
    """Make the SDK's workflow worker (and replayer) use the functions above; idempotent.
    Raises if the SDK's functions no longer take the parameters these were written for."""
    for sdk, ours, expected in (
        (_sdk_decode_activation, decode_activation, _DECODE),
        (_sdk_encode_completion, encode_completion, _ENCODE),
    ):
        if _parameters(sdk) != expected:
            raise RuntimeError(
                f"temporalio's {sdk.__name__} takes {_parameters(sdk)}, not {expected}: "
                "check payload_passes against the SDK before upgrading"
            )
        setattr(bridge_worker, sdk.__name__, ours)


def installed() -> bool:
    return (
        bridge_worker.decode_activation is decode_activation
        and bridge_worker.encode_completion is encode_completion
    )
