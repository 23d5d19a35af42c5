"""Outbound requests (webhook deliveries): only https to public addresses, pinned to the checked
address, no redirects, a bounded wait."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import outbound
from outbound import OutboundError, UnsafeUrl, check_url, post

# --- a tiny HTTP/1.1 server on 127.0.0.1 that records what it receives ---------------------


@dataclass
class Received:
    head: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Server:
    port: int
    requests: list[Received]
    server_names: list[str | None]


Handler = Callable[[Received], Awaitable[Answer]]


async def _ok(_: Received) -> Answer:
    return Answer()


@asynccontextmanager
async def http_server(
    handler: Handler = _ok, *, tls: ssl.SSLContext | None = None
) -> AsyncIterator[Server]:
    requests: list[Received] = []
    server_names: list[str | None] = []
    if tls is not None:
        tls.sni_callback = lambda _sock, name, _ctx: server_names.append(name)

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            raw = await reader.readuntil(b"\r\n\r\n")
            head, *lines = raw.decode("latin-1").split("\r\n")
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (line.partition(":") for line in lines if line)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            received = Received(head=head, headers=headers, body=body)
            requests.append(received)
            answer = await handler(received)
            await asyncio.sleep(answer.delay)
            extra = "".join(f"{k}: {v}\r\n" for k, v in answer.headers.items())
            writer.write(
                f"HTTP/1.1 {answer.status} X\r\ncontent-length: {len(answer.body)}\r\n"
                f"connection: close\r\n{extra}\r\n".encode("latin-1")
                + answer.body
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(connection, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    try:
        yield Server(port=port, requests=requests, server_names=server_names)
    finally:
        server.close()


# --- check_url: what the URL alone gives away -----------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["http://hooks.example.com/in", "ftp://hooks.example.com/in", "//hooks.example.com/in", "/in"],
)
def test_a_url_that_is_not_https_is_refused(url: str) -> None:
    with pytest.raises(UnsafeUrl, match="https"):
        check_url(url, allow_localhost=False)


def test_a_url_with_a_user_name_or_password_is_refused() -> None:
    for url in ("https://user:secret@hooks.example.com/in", "https://user@hooks.example.com/"):
        with pytest.raises(UnsafeUrl, match="user name or password"):
            check_url(url, allow_localhost=False)


def test_a_public_https_url_passes_the_check() -> None:
    check_url("https://hooks.example.com:8443/in?x=1", allow_localhost=False)
    check_url("https://93.184.216.34/in", allow_localhost=False)
    check_url("https://[2606:4700:4700::1111]/in", allow_localhost=False)
    check_url("https://bücher.example/in", allow_localhost=False)


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.1", "loopback"),
        ("[::1]", "loopback"),
        ("localhost", "loopback"),
        ("api.localhost", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("[fd12:3456::1]", "private"),
        ("169.254.10.1", "link-local"),
        ("[fe80::1]", "link-local"),
        ("169.254.169.254", "metadata"),
        ("[fd00:ec2::254]", "metadata"),
        ("224.0.0.1", "multicast"),
        ("[ff02::1]", "multicast"),
        ("240.0.0.1", "reserved"),
        ("0.0.0.0", "unspecified"),
        ("[::]", "unspecified"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("100.127.255.254", "carrier-grade NAT"),
        # IPv4 inside IPv6: mapped, NAT64, 6to4.
        ("[::ffff:127.0.0.1]", "loopback"),
        ("[::ffff:169.254.169.254]", "metadata"),
        ("[64:ff9b::a00:1]", "private"),
        ("[2002:c0a8:101::1]", "private"),
        # The old IPv4 spellings resolvers still accept.
        ("127.1", "loopback"),
        ("2130706433", "loopback"),
        ("0x7f.0.0.1", "loopback"),
    ],
)
def test_a_literal_non_public_host_is_refused(host: str, reason: str) -> None:
    with pytest.raises(UnsafeUrl, match=reason):
        check_url(f"https://{host}/in", allow_localhost=False)


def test_allow_localhost_lets_exactly_localhost_127_0_0_1_and_ipv6_loopback_through() -> None:
    for url in (
        "http://localhost:8765/in",
        "http://127.0.0.1:1/in",
        "http://[::1]:65535/in",
        "https://localhost/in",
        "http://LOCALHOST./in",
    ):
        check_url(url, allow_localhost=True)
        with pytest.raises(UnsafeUrl):
            check_url(url, allow_localhost=False)
    for url in (
        "http://127.0.0.2/in",
        "http://10.0.0.1/in",
        "http://api.localhost/in",
        "http://hooks.example.com/in",
        "http://169.254.169.254/latest/meta-data",
    ):
        with pytest.raises(UnsafeUrl):
            check_url(url, allow_localhost=True)


def test_an_invalid_or_overlong_url_is_refused() -> None:
    for url in ("https://exa mple.com/", "https://[::1/", "https://hooks.example.com:99999/"):
        with pytest.raises(UnsafeUrl, match="not a valid URL"):
            check_url(url, allow_localhost=False)
    with pytest.raises(UnsafeUrl, match="longer than"):
        check_url("https://hooks.example.com/" + "a" * 3000, allow_localhost=False)


# --- post: every resolved address is checked, and the connection goes to it ---------------


def fake_resolution(monkeypatch: pytest.MonkeyPatch, *answers: list[str]) -> list[tuple[str, int]]:
    """Resolve every name to ``answers[i]`` on the i-th look-up (the last one repeats)."""
    calls: list[tuple[str, int]] = []

    async def resolve(host: str, port: int) -> list[outbound.IPAddress]:
        calls.append((host, port))
        answer = answers[min(len(calls) - 1, len(answers) - 1)]
        return [ipaddress.ip_address(a) for a in answer]

    monkeypatch.setattr(outbound, "resolve", resolve)
    return calls


@pytest.mark.parametrize(
    ("addresses", "reason"),
    [
        (["127.0.0.1"], "loopback"),
        (["10.0.0.7"], "private"),
        (["169.254.169.254"], "metadata"),
        (["fd00:ec2::254"], "metadata"),
        (["::ffff:10.0.0.1"], "private"),
        (["100.64.1.1"], "carrier-grade NAT"),
        # One bad address among good ones is enough: a client may connect to any of them.
        (["93.184.216.34", "2606:2800:220:1::1", "192.168.0.10"], "private"),
    ],
)
async def test_a_name_resolving_to_any_non_public_address_is_refused(
    monkeypatch: pytest.MonkeyPatch, addresses: list[str], reason: str
) -> None:
    fake_resolution(monkeypatch, addresses)
    with pytest.raises(UnsafeUrl, match=reason):
        await post("https://hooks.example.com/in", b"{}", {}, timeout=5, allow_localhost=False)


async def test_allow_localhost_still_refuses_localhost_resolving_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_resolution(monkeypatch, ["127.0.0.1", "10.0.0.1"])
    with pytest.raises(UnsafeUrl, match="not a loopback"):
        await post("http://localhost:9/in", b"{}", {}, timeout=5, allow_localhost=True)


async def test_the_connection_goes_to_the_checked_address_without_a_second_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A rebinding name: public on the first answer, loopback on any later one.
    calls = fake_resolution(monkeypatch, ["93.184.216.34"], ["127.0.0.1"])
    sent: list[httpx.Request] = []

    async def handle(_self: object, request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(204, content=b"")

    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", handle)
    response = await post(
        "https://hooks.example.com:8443/in?x=1",
        b'{"a":1}',
        {"webhook-id": "msg_1", "Host": "evil.internal"},
        timeout=5,
        allow_localhost=False,
    )
    assert response == outbound.OutboundResponse(status_code=204, body_excerpt="")
    assert calls == [("hooks.example.com", 8443)]
    [request] = sent
    assert request.url == httpx.URL("https://93.184.216.34:8443/in?x=1")
    assert request.headers["host"] == "hooks.example.com:8443"
    assert request.headers["webhook-id"] == "msg_1"
    assert request.extensions["sni_hostname"] == "hooks.example.com"


async def test_a_name_that_does_not_resolve_is_an_outbound_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def resolve(host: str, port: int) -> list[outbound.IPAddress]:
        raise OSError("Name or service not known")

    monkeypatch.setattr(outbound, "resolve", resolve)
    with pytest.raises(OutboundError, match=r"cannot resolve hooks\.example\.com"):
        await post("https://hooks.example.com/in", b"{}", {}, timeout=5, allow_localhost=False)


# --- post against a real local server -------------------------------------------------------


async def test_post_delivers_body_and_headers_to_a_local_server_with_allow_localhost() -> None:
    async with http_server() as server:
        response = await post(
            f"http://127.0.0.1:{server.port}/hooks?x=1",
            b'{"event":"case.created"}',
            {"content-type": "application/json", "webhook-id": "msg_1"},
            timeout=5,
            allow_localhost=True,
        )
    assert response == outbound.OutboundResponse(status_code=200, body_excerpt="ok")
    [received] = server.requests
    assert received.head == "POST /hooks?x=1 HTTP/1.1"
    assert received.headers["host"] == f"127.0.0.1:{server.port}"
    assert received.headers["webhook-id"] == "msg_1"
    assert received.body == b'{"event":"case.created"}'


async def test_localhost_by_name_reaches_the_local_server() -> None:
    async with http_server() as server:
        response = await post(
            f"http://localhost:{server.port}/in", b"{}", {}, timeout=5, allow_localhost=True
        )
    assert response.status_code == 200
    assert server.requests[0].headers["host"] == f"localhost:{server.port}"


async def test_a_redirect_is_returned_not_followed() -> None:
    async def redirect(received: Received) -> Answer:
        return Answer(status=302, body=b"moved", headers={"location": "/elsewhere"})

    async with http_server(redirect) as server:
        response = await post(
            f"http://127.0.0.1:{server.port}/in", b"{}", {}, timeout=5, allow_localhost=True
        )
    assert response.status_code == 302
    assert [r.head for r in server.requests] == ["POST /in HTTP/1.1"]


async def test_an_error_answer_is_returned_with_a_short_excerpt_of_its_body() -> None:
    async def failing(received: Received) -> Answer:
        return Answer(status=503, body=("é" * 5000).encode())

    async with http_server(failing) as server:
        response = await post(
            f"http://127.0.0.1:{server.port}/in", b"{}", {}, timeout=5, allow_localhost=True
        )
    assert response.status_code == 503
    assert response.body_excerpt == "é" * outbound.EXCERPT_CHARS


async def test_no_answer_within_the_timeout_is_an_outbound_error() -> None:
    async def slow(received: Received) -> Answer:
        return Answer(delay=30)

    async with http_server(slow) as server:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(OutboundError, match=r"no answer within 0.3 s"):
            await post(
                f"http://127.0.0.1:{server.port}/in",
                b"{}",
                {},
                timeout=0.3,
                allow_localhost=True,
            )
        assert loop.time() - started < 10
    assert len(server.requests) == 1


async def test_a_refused_connection_is_an_outbound_error() -> None:
    async with http_server() as server:
        port = server.port
    with pytest.raises(OutboundError, match="cannot connect"):
        await post(f"http://127.0.0.1:{port}/in", b"{}", {}, timeout=5, allow_localhost=True)


# --- TLS: SNI and the certificate check use the URL's name, not the pinned address ---------


def _certificates(tmp_path: Path, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a certificate for ``name`` from a new CA, and a client context
    that trusts only that CA."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "caseloop test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cadata=ca.public_bytes(serialization.Encoding.PEM).decode())
    return server, client


async def test_tls_to_the_pinned_address_sends_sni_and_verifies_the_urls_name(
    tmp_path: Path,
) -> None:
    server_tls, client_tls = _certificates(tmp_path, "hooks.example.test")
    async with http_server(tls=server_tls) as server:
        target = outbound._target(
            f"https://hooks.example.test:{server.port}/in", allow_localhost=False
        )
        response = await outbound._send(
            target,
            [ipaddress.ip_address("127.0.0.1")],
            b"{}",
            {},
            timeout=5,
            tls=client_tls,
        )
    assert response.status_code == 200
    assert server.server_names == ["hooks.example.test"]
    assert server.requests[0].headers["host"] == f"hooks.example.test:{server.port}"


async def test_tls_refuses_a_certificate_for_another_name(tmp_path: Path) -> None:
    server_tls, client_tls = _certificates(tmp_path, "other.example.test")
    async with http_server(tls=server_tls) as server:
        target = outbound._target(
            f"https://hooks.example.test:{server.port}/in", allow_localhost=False
        )
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await outbound._send(
                target,
                [ipaddress.ip_address("127.0.0.1")],
                b"{}",
                {},
                timeout=5,
                tls=client_tls,
            )
    assert server.requests == []
