"""What an uploaded file is, judged from its bytes instead of the type its sender declared.

``filetype`` recognises binary formats by their signatures (PDF, PNG, JPEG, GIF, ZIP, executables
and more). The containers Office uses are opened to tell their documents apart: a ZIP's part
names (``word/``, ``xl/``, ``ppt/`` for .docx, .xlsx, .pptx) and the stream names of an OLE2
compound file, read with ``olefile`` (``WordDocument`` for .doc, ``Workbook`` for .xls, Outlook's
``__substg1.0_`` properties for .msg). Text has no signature: a file that decodes as UTF-8 (or
UTF-16 with a byte order mark, or Windows-1252) without control characters is text, which may be
stored as plain text or CSV, or as an e-mail when it opens with e-mail headers. Text holding
markup a browser would render or run (HTML, SVG, script) is ``text/html``, XML is
``application/xml``: neither is stored as text.

``detect`` reads a seekable file synchronously; the API runs it in a worker thread.
"""

from __future__ import annotations

import codecs
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import filetype
import olefile

UNKNOWN = "application/octet-stream"
TEXT = "text/plain"
CSV = "text/csv"
EMAIL = "message/rfc822"
HTML = "text/html"
XML = "application/xml"
ZIP = "application/zip"
DOC = "application/msword"
XLS = "application/vnd.ms-excel"
PPT = "application/vnd.ms-powerpoint"
MSG = "application/vnd.ms-outlook"
OLE = "application/x-ole-storage"  # a compound file that is none of the above
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"

SIGNATURE_BYTES = 8192  # what filetype looks at
CHUNK = 64 * 1024
OLE_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# An OOXML package's main part lives under one of these folders.
OOXML_FOLDERS = {"word/": DOCX, "xl/": XLSX, "ppt/": PPTX}
# Top-level streams of an OLE2 file, in the order they are looked for.
OLE_STREAMS = (
    ("__properties_version1.0", MSG),
    ("WordDocument", DOC),
    ("Workbook", XLS),
    ("Book", XLS),  # Excel 5/95
    ("PowerPoint Document", PPT),
)
# Characters that plain text never holds: controls other than tab, line feed, vertical tab, form
# feed and carriage return, DEL, and the C1 controls.
CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f]")
# Elements a browser renders or runs, wherever they stand in the text.
MARKUP = re.compile(
    r"<\s*(?:!doctype\s+html|html|head|body|script|iframe|frame|frameset|object|embed|applet"
    r"|svg|math|meta|link|style|base|form|img|video|audio|template)[\s/>]",
    re.IGNORECASE,
)
MARKUP_OVERLAP = 32  # text kept from the previous chunk, so a tag split between chunks is found
HEADER_LINE = re.compile(r"([!-9;-~]+):")  # an RFC 5322 header field name and its colon
EMAIL_HEADERS = frozenset(
    {"from", "to", "subject", "date", "message-id", "received", "return-path", "mime-version"}
)
EMAIL_SAMPLE = 64 * 1024  # the header block of an e-mail must end within this many characters


@dataclass(frozen=True)
class Detected:
    """What the bytes are (``media_type``), and every type they may be stored as."""

    media_type: str
    compatible: frozenset[str]

    @classmethod
    def only(cls, media_type: str) -> Detected:
        return cls(media_type, frozenset({media_type}))


def detect(file: BinaryIO) -> Detected:
    """The type of the file's bytes (``UNKNOWN`` when nothing matches)."""
    file.seek(0)
    head = file.read(SIGNATURE_BYTES)
    try:
        if head.startswith(OLE_SIGNATURE):
            return Detected.only(_ole_type(file))
        kind = filetype.guess(head)
        if kind is not None:
            if kind.mime in (ZIP, *OOXML_FOLDERS.values()):
                return Detected.only(_zip_type(file))
            return Detected.only(str(kind.mime))
        return _text_type(file, head)
    finally:
        file.seek(0)


def _zip_type(file: BinaryIO) -> str:
    """An Office Open XML document by its main part's folder, or a plain ZIP archive."""
    file.seek(0)
    try:
        with zipfile.ZipFile(file) as archive:  # reads the central directory, unpacks nothing
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return UNKNOWN
    if "[Content_Types].xml" in names:
        for folder, media_type in OOXML_FOLDERS.items():
            if any(name.startswith(folder) for name in names):
                return media_type
    return ZIP


def _ole_type(file: BinaryIO) -> str:
    """A Word, Excel, PowerPoint or Outlook file by its top-level streams."""
    file.seek(0)
    try:
        ole = olefile.OleFileIO(file)
        try:
            top = {path[0] for path in ole.listdir(streams=True, storages=True) if len(path) == 1}
        finally:
            ole.close()
    except Exception:  # any defect of a (perhaps hostile) file means it is no document
        return UNKNOWN
    if any(name.startswith("__substg1.0_") for name in top):
        return MSG
    for stream, media_type in OLE_STREAMS:
        if stream in top:
            return media_type
    return OLE


def _encoding(head: bytes) -> str:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return "utf-8"


def _decoded(file: BinaryIO, encoding: str) -> Iterator[str]:
    """The file's text, chunk by chunk; UnicodeDecodeError where it is not in ``encoding``."""
    decoder = codecs.getincrementaldecoder(encoding)()
    file.seek(0)
    while chunk := file.read(CHUNK):
        yield decoder.decode(chunk)
    yield decoder.decode(b"", final=True)


def _read_text(file: BinaryIO, encoding: str) -> tuple[str, bool] | None:
    """The start of the text and whether it holds markup; None unless it is all text."""
    sample, tail, markup = "", "", False
    try:
        for text in _decoded(file, encoding):
            if CONTROL.search(text):
                return None
            if len(sample) < EMAIL_SAMPLE:
                sample += text[: EMAIL_SAMPLE - len(sample)]
            markup = markup or MARKUP.search(tail + text) is not None
            tail = (tail + text)[-MARKUP_OVERLAP:]
    except UnicodeDecodeError:
        return None
    return sample, markup


def _text_type(file: BinaryIO, head: bytes) -> Detected:
    encoding = _encoding(head)
    read = _read_text(file, encoding)
    if read is None and encoding == "utf-8":  # not UTF-8: an older Windows export, perhaps
        read = _read_text(file, "cp1252")
    if read is None:
        return Detected.only(UNKNOWN)
    sample, markup = read
    if _is_email(sample):
        # An e-mail may carry HTML parts; as plain text it may not.
        return Detected(EMAIL, frozenset({EMAIL} if markup else {EMAIL, TEXT, CSV}))
    if markup:
        return Detected.only(HTML)
    if sample.lstrip("\ufeff \t\r\n").startswith("<?xml"):
        return Detected.only(XML)
    return Detected(TEXT, frozenset({TEXT, CSV}))


def _is_email(sample: str) -> bool:
    """Whether the text opens with an RFC 5322 header block naming common e-mail headers."""
    names: list[str] = []
    for line in sample.lstrip("\ufeff").splitlines():
        if not line:  # the blank line that ends the headers
            return len(names) >= 2 and not EMAIL_HEADERS.isdisjoint(names)
        if line[0] in " \t":  # a folded continuation of the header before
            if not names:
                return False
            continue
        match = HEADER_LINE.match(line)
        if match is None:
            return False
        names.append(match.group(1).lower())
    return False
