"""An upload's type comes from its bytes: signatures, Office containers, text and e-mail."""

from __future__ import annotations

import codecs
import io

import pytest

from api.filetypes import CHUNK, Detected, detect
from tests.files import HTML, PDF, PNG, ole_file, ooxml, zip_file

TEXT_TYPES = frozenset({"text/plain", "text/csv"})


@pytest.mark.parametrize(
    ("content", "media_type"),
    [
        (PDF, "application/pdf"),
        (PNG, "image/png"),
        (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "image/gif"),
        (
            b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9",
            "image/jpeg",
        ),
        (
            ooxml("word/document.xml"),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        (
            ooxml("xl/workbook.xml"),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
        (zip_file("word/document.xml"), "application/zip"),  # no [Content_Types].xml: no OOXML
        (zip_file("a.txt"), "application/zip"),
        (ole_file("WordDocument", "1Table"), "application/msword"),
        (ole_file("Workbook"), "application/vnd.ms-excel"),
        (ole_file("__substg1.0_0037001F", "__properties_version1.0"), "application/vnd.ms-outlook"),
        (ole_file("PowerPoint Document"), "application/vnd.ms-powerpoint"),
        (ole_file("Something"), "application/x-ole-storage"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "application/octet-stream"),
        (b"MZ\x90\x00" + b"\x00" * 60, "application/x-msdownload"),
        (HTML, "text/html"),
        (b"Hi,\n<SCRIPT >alert(1)</script>", "text/html"),
        (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "text/html"),
        (b"<?xml version='1.0'?><invoice/>", "application/xml"),
        (b"\x00\x01\x02\x03binary", "application/octet-stream"),
        (b"text with a \x1b escape", "application/octet-stream"),
    ],
)
def test_bytes_decide_the_type(content: bytes, media_type: str) -> None:
    assert detect(io.BytesIO(content)).media_type == media_type


@pytest.mark.parametrize(
    "content",
    [
        "Noter fra opkaldet: debitor betaler på fredag.\n".encode(),
        codecs.BOM_UTF8 + "vare;pris\nbrød;10\n".encode(),
        "vare;pris\r\nstøvler;1.200,00 €\r\n".encode("cp1252"),  # an older Windows export
        codecs.BOM_UTF16_LE + "name\tamount\nÅse\t10\n".encode("utf-16-le"),
        b"a < b and c > d, 2 <3",  # comparisons are not markup
    ],
)
def test_text_may_be_stored_as_plain_text_or_csv(content: bytes) -> None:
    assert detect(io.BytesIO(content)) == Detected("text/plain", TEXT_TYPES)


def test_an_email_is_detected_and_may_carry_html_only_as_an_email() -> None:
    headers = b"From: Jane <jane@example.com>\r\nTo: ap@example.com\r\nSubject: Invoice\r\n"
    folded = b"Received: from mx.example.com\r\n\tby mail.example.com\r\n"
    plain = detect(io.BytesIO(headers + folded + b"\r\nPlease find the invoice.\r\n"))
    assert plain == Detected("message/rfc822", TEXT_TYPES | {"message/rfc822"})
    html = detect(io.BytesIO(headers + b"\r\n<html><body>Invoice</body></html>\r\n"))
    assert html == Detected("message/rfc822", frozenset({"message/rfc822"}))
    not_headers = detect(io.BytesIO(b"Dear Sir: we write about the invoice.\r\n\r\nThanks"))
    assert not_headers.media_type == "text/plain"


def test_markup_is_found_past_the_first_chunk_and_across_a_chunk_boundary() -> None:
    filler = b"x" * (CHUNK - 4)
    assert detect(io.BytesIO(filler + b"<script>alert(1)</script>")).media_type == "text/html"
    assert detect(io.BytesIO(b"y" * 3 * CHUNK + b"\n<iframe src=x>")).media_type == "text/html"


def test_detection_leaves_the_file_at_its_start() -> None:
    for content in (PDF, ole_file("WordDocument"), ooxml("xl/workbook.xml"), b"plain text"):
        file = io.BytesIO(content)
        detect(file)
        assert file.tell() == 0
