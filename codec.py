"""Every Temporal payload caseloop writes is encrypted: AES-256-GCM with keys that carry an id.

Workflow histories hold debtor names, e-mail addresses, claim text and chat messages. The
``EncryptionCodec`` below sits in caseloop's one data converter (``temporal_client``), so the
API's client, the worker, the replayer and the tests all encrypt and decrypt the same way; the
Temporal server (and anyone reading its database or ``temporal workflow show``) sees only
ciphertext. The codec endpoint (``api/routes/codec.py``) lets an authorised ops engineer read
payloads in the Temporal Web UI.

Keys come from ``PAYLOAD_KEYS``: ``<id>:<base64 of 32 bytes>`` entries separated by commas. The
first key encrypts; every key decrypts, so a key is rotated by putting a new one first and
keeping the old ones for as long as histories encrypted with them exist. Each encrypted payload
names its key id in its metadata (and the id is authenticated along with the ciphertext).

A payload without the encrypted encoding is passed through as it is: it was written before
encryption was turned on (or with ``PAYLOAD_ENCRYPTION=false``), and such workflows must go on
running after the change.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import os
import re
import secrets
from collections.abc import Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
KEY_BYTES = 32
NONCE_BYTES = 12
_KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")


class PayloadKeyError(ValueError):
    """PAYLOAD_KEYS is missing or malformed, or a payload cannot be decrypted with it."""


class UnknownPayloadKey(PayloadKeyError):
    """A payload was encrypted with a key id that PAYLOAD_KEYS does not hold."""


class UndecryptablePayload(PayloadKeyError):
    """A payload's ciphertext does not verify with the key its id names (tampered or wrong key)."""


def parse_keys(text: str) -> dict[str, bytes]:
    """``id:base64,id:base64`` → ``{id: key}``, in order (the first encrypts)."""
    keys: dict[str, bytes] = {}
    for number, entry in enumerate((e.strip() for e in text.split(",")), start=1):
        if not entry:
            continue
        key_id, sep, encoded = entry.partition(":")
        key_id = key_id.strip()
        if not sep or not _KEY_ID_PATTERN.fullmatch(key_id):
            raise PayloadKeyError(
                f"PAYLOAD_KEYS entry {number} is not '<id>:<base64 key>' with an id of letters, "
                "digits, '.', '_' or '-'"
            )
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except binascii.Error as exc:
            raise PayloadKeyError(f"PAYLOAD_KEYS key {key_id!r} is not valid base64") from exc
        if len(key) != KEY_BYTES:
            raise PayloadKeyError(
                f"PAYLOAD_KEYS key {key_id!r} has {len(key)} bytes; AES-256 needs {KEY_BYTES}"
            )
        if key_id in keys:
            raise PayloadKeyError(f"PAYLOAD_KEYS names key id {key_id!r} twice")
        keys[key_id] = key
    if not keys:
        raise PayloadKeyError("PAYLOAD_KEYS holds no key")
    return keys


def new_key_entry(today: dt.date | None = None) -> str:
    """A fresh ``PAYLOAD_KEYS`` entry: an id from the date plus a random suffix, and 32 random
    bytes (``caseloop payload-key`` prints one; ``make run`` generates its dev key with it)."""
    day = (today or dt.datetime.now(dt.UTC).date()).strftime("%Y%m%d")
    key = base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()
    return f"k{day}-{secrets.token_hex(3)}:{key}"


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM for every payload, with the key id in the metadata (see the module doc).

    ``encrypt=False`` leaves new payloads in clear but still decrypts encrypted ones (what
    ``PAYLOAD_ENCRYPTION=false`` with keys set does).
    """

    def __init__(self, keys: Mapping[str, bytes], *, encrypt: bool = True) -> None:
        if not keys:
            raise PayloadKeyError("an encryption codec needs at least one key")
        self._keys = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._current = next(iter(keys)) if encrypt else None

    @property
    def current_key_id(self) -> str | None:
        """The id new payloads are encrypted with (None: they stay in clear)."""
        return self._current

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(payload) for payload in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        if self._current is None:
            return payload
        key_id = self._current.encode()
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._keys[self._current].encrypt(nonce, payload.SerializeToString(), key_id)
        return Payload(metadata={"encoding": ENCODING, KEY_ID: key_id}, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # written in clear, before encryption was turned on
        key_id = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        cipher = self._keys.get(key_id)
        if cipher is None:
            known = ", ".join(sorted(self._keys))
            raise UnknownPayloadKey(
                f"payload encrypted with key id {key_id!r}, which PAYLOAD_KEYS does not hold "
                f"(it holds {known}); add that key back to decrypt it"
            )
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            plain = cipher.decrypt(nonce, sealed, key_id.encode())
        except InvalidTag as exc:
            raise UndecryptablePayload(
                f"payload encrypted with key id {key_id!r} does not decrypt with that key: "
                "it was altered, or the key under that id is not the one it was written with"
            ) from exc
        decrypted = Payload()
        decrypted.ParseFromString(plain)
        return decrypted
