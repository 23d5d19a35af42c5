"""Payload encryption: round trip, key rotation, clear errors, and no start without a key."""

from __future__ import annotations

import base64
import dataclasses

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter._payload_converter import _TemporalTransferTypePayloadConverter
from temporalio.exceptions import ApplicationError

from codec import (
    ENCODING,
    KEY_ID,
    EncryptionCodec,
    PayloadKeyError,
    UndecryptablePayload,
    UnknownPayloadKey,
    new_key_entry,
    parse_keys,
)
from domain.cases import CaseSubmission
from settings import Settings
from temporal_client import data_converter
from tests.support import TEST_PAYLOAD_KEYS, case_body

DEBTOR = "Nordisk Tømrer ApS"
OLD, NEW = new_key_entry(), new_key_entry()


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def plain(text: str = DEBTOR) -> Payload:
    return pydantic_data_converter.payload_converter.to_payloads([{"debtor": text}])[0]


async def test_encrypted_payload_hides_the_data_and_decrypts_to_the_original() -> None:
    codec = EncryptionCodec(parse_keys(TEST_PAYLOAD_KEYS))
    original = plain()
    [encrypted] = await codec.encode([original])
    assert encrypted.metadata["encoding"] == ENCODING
    assert encrypted.metadata[KEY_ID] == b"test-2026"
    assert DEBTOR.encode() not in encrypted.SerializeToString()
    assert b"json/plain" not in encrypted.SerializeToString()  # the inner metadata is hidden too
    [decrypted] = await codec.decode([encrypted])
    assert decrypted == original
    [again] = await codec.encode([original])
    assert again.data != encrypted.data, "a fresh nonce for every payload"


async def test_data_converter_round_trips_a_case_submission_encrypted() -> None:
    converter = data_converter(settings(payload_keys=TEST_PAYLOAD_KEYS))
    submission = CaseSubmission.model_validate(case_body())
    assert submission.debtor.name == DEBTOR
    [payload] = await converter.encode([submission])
    assert payload.metadata["encoding"] == ENCODING
    assert DEBTOR.encode() not in payload.SerializeToString()
    assert await converter.decode([payload], [CaseSubmission]) == [submission]


async def test_after_rotation_old_payloads_decrypt_and_new_ones_use_the_new_key() -> None:
    before = EncryptionCodec(parse_keys(OLD))
    after = EncryptionCodec(parse_keys(f"{NEW},{OLD}"))
    [written_before] = await before.encode([plain()])
    [written_after] = await after.encode([plain()])
    old_id, new_id = OLD.split(":")[0], NEW.split(":")[0]
    assert written_before.metadata[KEY_ID] == old_id.encode()
    assert written_after.metadata[KEY_ID] == new_id.encode()
    assert after.current_key_id == new_id
    assert await after.decode([written_before, written_after]) == [plain(), plain()]


async def test_a_payload_of_an_unknown_key_id_fails_naming_the_id() -> None:
    [written] = await EncryptionCodec(parse_keys(NEW)).encode([plain()])
    new_id, old_id = NEW.split(":")[0], OLD.split(":")[0]
    with pytest.raises(UnknownPayloadKey) as raised:
        await EncryptionCodec(parse_keys(OLD)).decode([written])
    assert f"key id {new_id!r}" in str(raised.value)
    assert old_id in str(raised.value), "it says which keys it has"


async def test_an_altered_payload_or_another_key_under_the_same_id_fails_clearly() -> None:
    codec = EncryptionCodec(parse_keys(TEST_PAYLOAD_KEYS))
    [written] = await codec.encode([plain()])
    altered = Payload()
    altered.CopyFrom(written)
    altered.data = written.data[:-1] + bytes([written.data[-1] ^ 1])
    with pytest.raises(UndecryptablePayload, match="does not decrypt"):
        await codec.decode([altered])
    impostor = EncryptionCodec({"test-2026": b"\x01" * 32})
    with pytest.raises(UndecryptablePayload):
        await impostor.decode([written])


async def test_payloads_written_in_clear_before_encryption_still_decode() -> None:
    codec = EncryptionCodec(parse_keys(TEST_PAYLOAD_KEYS))
    assert await codec.decode([plain()]) == [plain()]


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ("", "holds no key"),
        ("no-colon", "is not '<id>:<base64 key>'"),
        ("bad id:" + base64.b64encode(b"k" * 32).decode(), "is not '<id>:<base64 key>'"),
        ("short:" + base64.b64encode(b"k" * 16).decode(), "has 16 bytes; AES-256 needs 32"),
        ("a:not base64!", "not valid base64"),
        (f"{OLD},{OLD}", "twice"),
    ],
)
def test_malformed_payload_keys_are_refused(keys: str, message: str) -> None:
    with pytest.raises(PayloadKeyError, match=message):
        data_converter(settings(payload_keys=keys or " "))


def test_without_payload_keys_caseloop_refuses_to_start() -> None:
    with pytest.raises(PayloadKeyError, match="PAYLOAD_KEYS is not set"):
        data_converter(settings())


async def test_encryption_turned_off_writes_in_clear_but_still_reads_encrypted() -> None:
    assert data_converter(settings(payload_encryption=False)) is pydantic_data_converter
    off = data_converter(settings(payload_keys=TEST_PAYLOAD_KEYS, payload_encryption=False))
    [written] = await off.encode([{"debtor": DEBTOR}])
    assert written.metadata["encoding"] == b"json/plain"
    on = data_converter(settings(payload_keys=TEST_PAYLOAD_KEYS))
    [encrypted] = await on.encode([{"debtor": DEBTOR}])
    assert await off.decode([encrypted]) == [{"debtor": DEBTOR}]


async def test_failure_messages_are_encrypted_too() -> None:
    converter = data_converter(settings(payload_keys=TEST_PAYLOAD_KEYS))
    failure = Failure()
    await converter.encode_failure(ApplicationError(f"no bank account for {DEBTOR}"), failure)
    assert DEBTOR.encode() not in failure.SerializeToString()
    decoded = await converter.decode_failure(failure)
    assert str(decoded) == f"no bank account for {DEBTOR}"


async def test_every_data_converter_the_sdk_builds_shares_one_payload_converter() -> None:
    """The SDK builds a data converter (and with it a payload converter) twice per workflow
    activation and once per workflow run; they all share one pydantic converter and its cache
    of type adapters, and still round-trip."""
    converter = data_converter(settings(payload_keys=TEST_PAYLOAD_KEYS))
    rebuilt = dataclasses.replace(converter)
    for built in (converter, rebuilt):
        assert isinstance(built.payload_converter, _TemporalTransferTypePayloadConverter)
    assert (
        rebuilt.payload_converter._inner_payload_converter
        is converter.payload_converter._inner_payload_converter
    )
    assert converter.payload_converter_class() is converter.payload_converter_class()
    submission = CaseSubmission.model_validate(case_body())
    assert await rebuilt.decode(await converter.encode([submission]), [CaseSubmission]) == [
        submission
    ]
