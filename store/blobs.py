"""The blob store: where attachment bytes live, outside workflows and the database.

Workflows only ever see attachment ids; the ``attachments`` table maps an id to its metadata and
the ``storage_key`` the bytes are stored under here. ``LocalBlobStore`` (a directory) is the
default; anything that can put, stream and delete bytes by key (S3, Azure Blob) fits the Protocol.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import anyio

CHUNK = 64 * 1024
TEMP_PREFIX = ".tmp-"


class BlobTooLarge(Exception):
    """The stream had more bytes than the limit given to ``put``; nothing was kept."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} bytes")
        self.limit = limit


@dataclass(frozen=True)
class StoredBlob:
    key: str
    size: int
    sha256: str


class BlobStore(Protocol):
    async def put(self, chunks: AsyncIterable[bytes], *, max_bytes: int) -> StoredBlob:
        """Store the stream under a new key. Raises ``BlobTooLarge`` (keeping nothing) once more
        than ``max_bytes`` arrive."""
        ...

    def open(self, key: str) -> AsyncIterator[bytes]:
        """The stored bytes, in chunks. Raises ``FileNotFoundError`` for an unknown key."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the bytes; an unknown key is not an error (deleting twice is safe)."""
        ...


class LocalBlobStore:
    """Blobs as files in one directory, written atomically: a temporary file renamed into place,
    so a reader never sees a half-written blob and a crash leaves only a ``.tmp-*`` file."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _path(self, key: str) -> Path:
        # Keys are ours (uuid hex), but never let one name a file outside the directory.
        if not key or not key.isalnum():
            raise FileNotFoundError(key)
        return self.directory / key

    async def put(self, chunks: AsyncIterable[bytes], *, max_bytes: int) -> StoredBlob:
        await anyio.Path(self.directory).mkdir(parents=True, exist_ok=True)
        key = uuid.uuid4().hex
        temp = self.directory / f"{TEMP_PREFIX}{key}"
        digest, size = hashlib.sha256(), 0
        try:
            async with await anyio.open_file(temp, "wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise BlobTooLarge(max_bytes)
                    digest.update(chunk)
                    await out.write(chunk)
                await out.flush()
                await anyio.to_thread.run_sync(os.fsync, out.wrapped.fileno())
            await anyio.to_thread.run_sync(os.replace, temp, self._path(key))
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                await anyio.Path(temp).unlink()
            raise
        return StoredBlob(key=key, size=size, sha256=digest.hexdigest())

    async def open(self, key: str) -> AsyncIterator[bytes]:
        async with await anyio.open_file(self._path(key), "rb") as source:
            while chunk := await source.read(CHUNK):
                yield chunk

    async def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            await anyio.Path(self._path(key)).unlink()
