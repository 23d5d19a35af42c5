"""Reading multipart uploads within limits, and keeping their bytes in the blob store.

A file belongs to one ``AttachmentOwner``: a thread side of a case, or a creditor-partner pair's
relationship chat.

Limits are checked as early as possible: the declared ``Content-Length`` before anything is read,
the bytes actually received while the body streams in (a client may lie or send no length),
then each file's size and type once parsed. A file's type is judged from its bytes
(``api.filetypes``): the declared type (or, for a generic one, the file name's) must be one the
bytes may be stored as, and the type stored must be allowed. Parsed files are spooled to anonymous
temporary files (removed when closed), and only a file that passed every check is copied into the
blob store.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import mimetypes
import re
import unicodedata
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from api import filetypes
from api.deps import get_blobs
from api.errors import Problem, invalid
from api.idempotency import derived_id, key_reused
from settings import Settings
from store import chat as chat_store
from store.accounts import Principal
from store.blobs import BlobTooLarge
from store.models import Attachment

# Room for the multipart framing and the text fields around the files.
FORM_OVERHEAD_BYTES = 64 * 1024
MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS = 30
CHUNK = 64 * 1024
GENERIC_TYPES = {"", "application/octet-stream", "binary/octet-stream"}
# Other names clients use for allowed types.
TYPE_ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "application/x-pdf": "application/pdf",
    "application/csv": "text/csv",
    "text/x-csv": "text/csv",
    "text/comma-separated-values": "text/csv",
}
# Types the standard library may not know, for files sent without a specific content type.
EXTRA_TYPES = {
    ".msg": "application/vnd.ms-outlook",
    ".eml": "message/rfc822",
    ".csv": "text/csv",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def too_large(settings: Settings) -> Problem:
    return Problem(
        413,
        "attachment_too_large",
        f"An attachment may have at most {settings.attachment_max_bytes} bytes.",
        extra={"maxBytes": settings.attachment_max_bytes},
    )


def unsupported_type(declared: str, detected: str | None, settings: Settings) -> Problem:
    """415 for a file whose type is not allowed (``detected`` is None when the declared type
    alone decided), or whose bytes are not what its declared type says."""
    allowed = ", ".join(settings.attachment_content_types)
    if detected is None or declared in (detected, ""):
        shown = detected or declared or "unknown"
        detail = f"Files of type {shown!r} cannot be attached; allowed: {allowed}."
    else:
        detail = (
            f"The file was sent as {declared!r} but its content is {detected!r}; send it with "
            f"its own type. Allowed: {allowed}."
        )
    return Problem(
        415,
        "unsupported_media_type",
        detail,
        extra={"declaredType": declared or None, "detectedType": detected},
    )


@dataclass(frozen=True)
class AttachmentOwner:
    """Where a file belongs: one case (and the partner side of its thread), or one relationship
    (its partner side is the pair's partner). Exactly one of ``case_id`` and ``relationship_id``
    is set."""

    partner_id: uuid.UUID
    case_id: uuid.UUID | None = None
    relationship_id: uuid.UUID | None = None

    def __post_init__(self) -> None:
        if (self.case_id is None) == (self.relationship_id is None):
            raise ValueError("an attachment belongs to a case or to a relationship")

    @classmethod
    def of_case(cls, case_id: uuid.UUID, partner_id: uuid.UUID) -> AttachmentOwner:
        return cls(partner_id=partner_id, case_id=case_id)

    @classmethod
    def of_relationship(cls, relationship_id: uuid.UUID, partner_id: uuid.UUID) -> AttachmentOwner:
        return cls(partner_id=partner_id, relationship_id=relationship_id)

    def owns(self, attachment: Attachment) -> bool:
        """Whether the stored file belongs here (its case or relationship, and its side)."""
        return (attachment.case_id, attachment.relationship_id, attachment.partner_id) == (
            self.case_id,
            self.relationship_id,
            self.partner_id,
        )


@dataclass
class Upload:
    """One file of a form, checked and spooled, not yet in the blob store."""

    filename: str
    content_type: str
    size: int
    sha256: str
    file: UploadFile

    def fingerprint(self) -> dict[str, object]:
        return {
            "filename": self.filename,
            "contentType": self.content_type,
            "size": self.size,
            "sha256": self.sha256,
        }


@dataclass
class UploadForm:
    """A parsed multipart form: its text fields (name -> values) and its checked files."""

    form: FormData
    fields: dict[str, list[str]] = field(default_factory=dict)
    files: list[Upload] = field(default_factory=list)

    def value(self, name: str) -> str | None:
        values = self.fields.get(name)
        if values is None:
            return None
        if len(values) > 1:
            raise invalid(name, "must be given once")
        return values[0]

    async def close(self) -> None:
        await self.form.close()


def is_multipart(request: Request) -> bool:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return media == "multipart/form-data"


def safe_filename(name: str | None) -> str:
    """The last path segment without control characters, at most 255 characters."""
    name = re.split(r"[\\/]", name or "")[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip().strip(".")
    return name[:255] or "attachment"


def media_type(declared: str | None, filename: str) -> str:
    """The declared type without parameters, under its usual name; a generic one is guessed
    from the file name ("" when neither tells). A CSV file declared as Excel, as browsers on
    Windows send it, is declared CSV."""
    media = (declared or "").split(";")[0].strip().lower()
    media = TYPE_ALIASES.get(media, media)
    suffix = ("." + filename.rsplit(".", 1)[-1].lower()) if "." in filename else ""
    if media in GENERIC_TYPES:
        media = EXTRA_TYPES.get(suffix) or mimetypes.guess_type(filename)[0] or ""
    elif media == "application/vnd.ms-excel" and suffix == ".csv":
        media = "text/csv"
    return TYPE_ALIASES.get(media, media)


async def _sha256(upload: UploadFile) -> str:
    digest = hashlib.sha256()
    while chunk := await upload.read(CHUNK):
        digest.update(chunk)
    await upload.seek(0)
    return digest.hexdigest()


async def read_form(
    request: Request,
    settings: Settings,
    *,
    file_field: str,
    text_fields: Sequence[str],
    max_files: int,
) -> UploadForm:
    """Parse a multipart body: 413 past the size limit, 415 for a type not allowed, 422 for a
    field the endpoint does not know. The caller closes the form."""
    limit = settings.attachment_max_bytes
    body_limit = limit * max(max_files, 1) + FORM_OVERHEAD_BYTES
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > body_limit:
        raise too_large(settings)

    async def counted() -> AsyncGenerator[bytes, None]:
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > body_limit:
                raise too_large(settings)
            yield chunk

    parser = MultiPartParser(
        request.headers,
        counted(),
        max_files=max_files,
        max_fields=MAX_FIELDS,
        max_part_size=MAX_FIELD_BYTES,
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise Problem(422, "validation_failed", f"Invalid multipart body: {exc.message}") from exc
    parsed = UploadForm(form)
    try:
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                if name != file_field:
                    raise invalid(name, f"is not a file field; send files as {file_field!r}")
                parsed.files.append(await _check(value, settings))
            elif name in text_fields:
                parsed.fields.setdefault(name, []).append(value)
            else:
                raise invalid(name, "is not a field of this form")
    except BaseException:
        await parsed.close()
        raise
    return parsed


async def _check(upload: UploadFile, settings: Settings) -> Upload:
    filename = safe_filename(upload.filename)
    size = upload.size or 0
    if size > settings.attachment_max_bytes:
        raise too_large(settings)
    declared = media_type(upload.content_type, filename)
    allowed = settings.attachment_content_types
    if declared and declared not in allowed:
        raise unsupported_type(declared, None, settings)
    if size == 0:
        raise invalid(filename, "is empty")
    detected = await run_in_threadpool(filetypes.detect, upload.file)
    if declared and declared not in detected.compatible:
        raise unsupported_type(declared, detected.media_type, settings)
    content_type = declared or detected.media_type
    if content_type not in allowed:
        raise unsupported_type(declared, detected.media_type, settings)
    return Upload(filename, content_type, size, await _sha256(upload), upload)


async def store_uploads(
    request: Request,
    principal: Principal,
    uploads: Sequence[Upload],
    owner: AttachmentOwner,
) -> list[Attachment]:
    """Copy checked uploads into the blob store and record them for ``owner``; all or nothing."""
    sessions = request.app.state.sessions
    stored: list[Attachment] = []
    try:
        for index, upload in enumerate(uploads):
            new_id = derived_id(request, principal, "attachment", f"#{index}")
            async with sessions() as session:
                saved = await session.get(Attachment, new_id)
            if saved is None:
                saved = await _store_upload(request, principal, upload, owner, new_id)
            # else: stored by a retried request with the same key
            if not owner.owns(saved) or saved.org_id != principal.org_id:
                # The key is bound to one request (api/idempotency.py), so this is not a retry
                # of it: never hand a file of one case or relationship to another.
                raise key_reused()
            stored.append(saved)
    except BaseException:
        await discard(request, [a.id for a in stored])
        raise
    return stored


async def _store_upload(
    request: Request,
    principal: Principal,
    upload: Upload,
    owner: AttachmentOwner,
    new_id: uuid.UUID,
) -> Attachment:
    """Copy one upload into the blob store and record it under ``new_id``, or return the row a
    concurrent attempt with the same key recorded first (and drop this copy of the bytes)."""
    blobs = get_blobs(request)
    settings: Settings = request.app.state.settings

    async def chunks(source: UploadFile = upload.file) -> AsyncIterator[bytes]:
        await source.seek(0)
        while chunk := await source.read(CHUNK):
            yield chunk

    try:
        blob = await blobs.put(chunks(), max_bytes=settings.attachment_max_bytes)
    except BlobTooLarge as exc:
        raise too_large(settings) from exc
    attachment = Attachment(
        id=new_id,
        case_id=owner.case_id,
        relationship_id=owner.relationship_id,
        partner_id=owner.partner_id,
        org_id=principal.org_id,
        user_id=principal.user_id,
        filename=upload.filename,
        content_type=upload.content_type,
        size=blob.size,
        sha256=blob.sha256,
        storage_key=blob.key,
        created_at=_now(),
    )
    try:
        saved, created = await chat_store.add_attachment(
            sessions=request.app.state.sessions, attachment=attachment
        )
    except BaseException:
        await blobs.delete(blob.key)
        raise
    if not created:
        await blobs.delete(blob.key)
    return saved


async def discard(request: Request, ids: Sequence[uuid.UUID]) -> None:
    """Delete attachments (rows first, then their bytes)."""
    blobs = get_blobs(request)
    for key in await chat_store.delete_attachments(sessions=request.app.state.sessions, ids=ids):
        await blobs.delete(key)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
