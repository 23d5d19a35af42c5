"""Malformed requests get a problem+json answer with a stable code, and change nothing: bodies
that are not UTF-8 or well-formed JSON, too deep or with huge numbers (400), headers too large
(431), and bytes that are not HTTP at all (400), in the app and behind a real uvicorn."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import httpx
import pytest

from api.guard import MAX_HEADER_BYTES
from api.json_body import MAX_NESTING, MAX_NUMBER_CHARS
from api.server import MAX_HEAD_BYTES
from tests.support import Actor

JSON = {"Content-Type": "application/json"}
DEEP = b"[" * 5000 + b"]" * 5000
MALFORMED_BODIES = [
    pytest.param(b'{"creditorReference": "INV-1",', "malformed_json", id="truncated"),
    pytest.param(b'{"amountToRecover": NaN}', "malformed_json", id="nan"),
    pytest.param(b'\xef\xbb\xbf{"a": 1}', "malformed_json", id="byte-order-mark"),
    pytest.param(b'{"claimDescription": "caf\xe9"}', "invalid_utf8", id="latin-1"),
    pytest.param(b'{"claimDescription": "\\ud800"}', "invalid_utf8", id="lone-surrogate"),
    pytest.param(
        b'{"amountToRecover": 1' + b"0" * 5000 + b"}", "number_too_large", id="5000-digits"
    ),
    pytest.param(b'{"a": 1.' + b"5" * MAX_NUMBER_CHARS + b"}", "number_too_large", id="long-float"),
    pytest.param(DEEP, "nesting_too_deep", id="nested-arrays"),
    pytest.param(b'{"a":' * 2000 + b"1" + b"}" * 2000, "nesting_too_deep", id="nested-objects"),
]


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == code
    assert body["status"] == status
    assert body["type"] == f"urn:caseloop:problem:{code}"


async def case_count(api: httpx.AsyncClient, actor: Actor) -> int:
    response = await api.get("/api/cases", headers=actor.headers)
    assert response.status_code == 200, response.text
    return int(response.json()["page"]["totalResults"])


@pytest.mark.parametrize(("body", "code"), MALFORMED_BODIES)
async def test_a_malformed_json_body_is_400_with_its_own_code_and_creates_nothing(
    api: httpx.AsyncClient, creditor: Actor, body: bytes, code: str
) -> None:
    response = await api.post("/api/cases", content=body, headers={**creditor.headers, **JSON})
    assert_problem(response, 400, code)
    assert await case_count(api, creditor) == 0


async def test_malformed_json_is_400_on_every_json_endpoint(
    api: httpx.AsyncClient, creditor: Actor
) -> None:
    for path in ("/api/bank-accounts", "/api/tasks", "/api/cases/x/chats", "/api/tasks/x/close"):
        response = await api.post(path, content=DEEP, headers={**creditor.headers, **JSON})
        assert_problem(response, 400, "nesting_too_deep")
    response = await api.patch(
        "/api/cases/00000000-0000-0000-0000-000000000000",
        content=b"{",
        headers={**creditor.headers, "Content-Type": "application/merge-patch+json"},
    )
    assert_problem(response, 400, "malformed_json")


async def test_json_within_the_limits_still_reaches_the_endpoint(
    api: httpx.AsyncClient, creditor: Actor
) -> None:
    nested = b"[" * MAX_NESTING + b"]" * MAX_NESTING
    big = b'{"amountToRecover": 1' + b"0" * (MAX_NUMBER_CHARS - 1) + b"}"
    for body in (nested, big):
        response = await api.post("/api/cases", content=body, headers={**creditor.headers, **JSON})
        assert_problem(response, 422, "validation_failed")


async def test_a_64_kb_auth_header_is_431_problem_json(
    api: httpx.AsyncClient, creditor: Actor
) -> None:
    response = await api.get("/api/cases", headers={"Authorization": "Bearer " + "k" * 65536})
    assert_problem(response, 431, "headers_too_large")
    assert response.json()["maxBytes"] == MAX_HEADER_BYTES
    # Public paths too; and headers within the cap still work.
    response = await api.get("/api/health", headers={"X-Padding": "p" * MAX_HEADER_BYTES})
    assert_problem(response, 431, "headers_too_large")
    padding = {"X-Padding": "p" * (MAX_HEADER_BYTES // 2)}
    response = await api.get("/api/cases", headers={**creditor.headers, **padding})
    assert response.status_code == 200, response.text


async def raw_exchange(base_url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes to the server; the status, headers and body of its answer."""
    address = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    try:
        writer.write(request)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


async def test_behind_uvicorn_a_64_kb_auth_header_is_431_problem_json(
    served: str, creditor: Actor
) -> None:
    async with httpx.AsyncClient(base_url=served) as client:
        response = await client.get(
            "/api/cases", headers={"Authorization": "Bearer " + "k" * 65536}
        )
        assert_problem(response, 431, "headers_too_large")
        response = await client.post(
            "/api/cases", content=DEEP, headers={**creditor.headers, **JSON}
        )
        assert_problem(response, 400, "nesting_too_deep")


async def test_behind_uvicorn_what_is_not_http_gets_problem_json_too(served: str) -> None:
    huge = b"GET /api/cases HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"p" * (MAX_HEAD_BYTES + 1)
    status, headers, body = await raw_exchange(served, huge + b"\r\n\r\n")
    assert (status, headers["content-type"]) == (431, "application/problem+json")
    assert httpx.Response(status, content=body).json()["code"] == "headers_too_large"

    status, headers, body = await raw_exchange(served, b"NOT HTTP AT ALL\r\n\r\n")
    assert (status, headers["content-type"]) == (400, "application/problem+json")
    assert httpx.Response(status, content=body).json()["code"] == "malformed_request"
