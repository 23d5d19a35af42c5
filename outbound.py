"""Requests caseloop makes to URLs its users give it (webhook deliveries), made safely.

A subscriber chooses the URL, so a careless or hostile one could point caseloop at its own
network: the Temporal frontend, the database, a cloud metadata service. ``check_url`` refuses
what the URL alone gives away (not https, credentials in it, a private address written as the
host); ``post`` also resolves the host and refuses it unless EVERY address is a public one, then
connects to the very address it checked (the name is not looked up a second time, so a DNS
answer that changes in between cannot steer the connection), with the name still in the Host
header, the TLS SNI and the certificate check. Redirects are never followed: a 3xx is the answer.

``WEBHOOKS_ALLOW_LOCALHOST`` (development and tests) lets exactly ``localhost``, ``127.0.0.1``
and ``[::1]`` through, over http or https and on any port; nothing else on a private network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import certifi
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# The one exception WEBHOOKS_ALLOW_LOCALHOST makes, by the host as written in the URL.
LOCALHOST_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
MAX_URL_LENGTH = 2048
EXCERPT_CHARS = 200
# Bytes of a response body read at most (the rest is never downloaded).
_EXCERPT_BYTES = 4 * EXCERPT_CHARS

# A DNS name after IDNA encoding (httpx encodes non-ASCII names to xn-- labels).
_HOSTNAME = re.compile(
    r"(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?"
)
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_METADATA = frozenset(
    {ipaddress.IPv4Address("169.254.169.254"), ipaddress.IPv6Address("fd00:ec2::254")}
)


class UnsafeUrl(ValueError):
    """caseloop will not send to this URL; ``str(e)`` says why and may be shown to the user."""


class OutboundError(Exception):
    """The request was made but failed (refused, timed out, TLS, DNS); ``str(e)`` says why."""


@dataclass(frozen=True)
class OutboundResponse:
    """What the receiver answered: its status and the start of its body (≤ 200 characters)."""

    status_code: int
    body_excerpt: str


def unsafe_address_reason(address: IPAddress) -> str | None:
    """Why caseloop must not connect to ``address``, or None for a public (global) one.

    IPv4 addresses embedded in IPv6 ones (IPv4-mapped ``::ffff:a.b.c.d``, NAT64 ``64:ff9b::``,
    6to4 ``2002::``) are judged by the IPv4 address they carry.
    """
    if address in _METADATA:
        return "a cloud metadata address"
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return unsafe_address_reason(embedded)
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, ipaddress.IPv4Address) and address in _CGNAT:
        return "a shared (carrier-grade NAT) address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private or not address.is_global:
        return "a private address"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _ip_literal(host: str) -> IPAddress | None:
    """The address a host names literally, including the old IPv4 forms (``127.1``,
    ``2130706433``, ``0x7f.0.0.1``) that resolvers still accept."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


@dataclass(frozen=True)
class _Target:
    url: httpx.URL
    host: str  # as written in the URL, lower case, IPv6 without brackets
    is_localhost: bool  # the WEBHOOKS_ALLOW_LOCALHOST exception applies
    literal: IPAddress | None


def _target(url: str, *, allow_localhost: bool) -> _Target:
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl(f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise UnsafeUrl(f"not a valid URL ({exc})") from None
    host = parsed.raw_host.decode("ascii").lower().rstrip(".")
    if parsed.scheme not in ("http", "https") or not host:
        raise UnsafeUrl("the URL must be an absolute https:// URL")
    if parsed.userinfo:
        raise UnsafeUrl("the URL must not contain a user name or password")
    is_localhost = allow_localhost and host in LOCALHOST_NAMES
    if parsed.scheme != "https" and not is_localhost:
        raise UnsafeUrl("the URL must use https")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise UnsafeUrl("not a valid URL (the port must be 1 to 65535)")
    literal = _ip_literal(host)
    if literal is None and not _HOSTNAME.fullmatch(host):
        raise UnsafeUrl("not a valid URL (the host is not a valid name)")
    if not is_localhost:
        if literal is not None:
            reason = unsafe_address_reason(literal)
            if reason is not None:
                raise UnsafeUrl(f"the host is {reason}")
        elif host == "localhost" or host.endswith(".localhost"):
            raise UnsafeUrl("the host is a loopback address")
    return _Target(url=parsed, host=host, is_localhost=is_localhost, literal=literal)


def check_url(url: str, *, allow_localhost: bool) -> None:
    """Refuse (``UnsafeUrl``) what the URL alone shows to be unsafe: not https, a user name or
    password in it, a host that is literally a non-public address. Needs no network; ``post``
    checks the resolved addresses too, on every request."""
    _target(url, allow_localhost=allow_localhost)


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (tests replace this to resolve names they invent)."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _canonname, sockaddr in infos:
        # An IPv6 sockaddr may carry a zone ("fe80::1%eth0"); the address is what is judged.
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


async def _addresses(target: _Target) -> list[IPAddress]:
    if target.literal is not None:
        return [target.literal]
    port = target.url.port or (443 if target.url.scheme == "https" else 80)
    try:
        addresses = await resolve(target.host, port)
    except OSError as exc:
        raise OutboundError(f"cannot resolve {target.host} ({exc})") from None
    if not addresses:
        raise OutboundError(f"cannot resolve {target.host}")
    # Connect to an IPv4-mapped address as the IPv4 address it is (it was judged as one).
    addresses = [
        a.ipv4_mapped if isinstance(a, ipaddress.IPv6Address) and a.ipv4_mapped else a
        for a in addresses
    ]
    for address in addresses:
        if target.is_localhost:
            if not address.is_loopback:
                raise UnsafeUrl(f"{target.host} resolves to {address}, not a loopback address")
        else:
            reason = unsafe_address_reason(address)
            if reason is not None:
                raise UnsafeUrl(f"{target.host} resolves to {address}, {reason}")
    return addresses


@lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    # Built once: loading the CA bundle costs milliseconds, and a context is safe to share.
    return ssl.create_default_context(cafile=certifi.where())


def _pinned_request(
    client: httpx.AsyncClient,
    target: _Target,
    address: IPAddress,
    body: bytes,
    headers: Mapping[str, str],
) -> httpx.Request:
    """A POST to ``address`` that speaks to the URL's host: its name in the Host header, in TLS
    SNI and in the certificate check (httpcore's ``sni_hostname`` sets ``server_hostname``)."""
    sent_headers = {k: v for k, v in headers.items() if k.lower() != "host"}
    sent_headers["Host"] = target.url.netloc.decode("ascii")
    extensions = {}
    if target.url.scheme == "https" and target.literal is None:
        extensions["sni_hostname"] = target.host
    return client.build_request(
        "POST",
        target.url.copy_with(host=str(address)),
        content=body,
        headers=sent_headers,
        extensions=extensions,
    )


async def _send(
    target: _Target,
    addresses: list[IPAddress],
    body: bytes,
    headers: Mapping[str, str],
    *,
    timeout: float,  # noqa: ASYNC109 - httpx's per-phase limits, inside post's overall one
    tls: ssl.SSLContext,
) -> OutboundResponse:
    transport = httpx.AsyncHTTPTransport(verify=tls, retries=0)
    # trust_env=False: no proxy from the environment (a proxy would resolve the name itself).
    async with httpx.AsyncClient(
        transport=transport, trust_env=False, follow_redirects=False, timeout=timeout
    ) as client:
        for index, address in enumerate(addresses):
            request = _pinned_request(client, target, address, body, headers)
            try:
                response = await client.send(request, stream=True)
            except httpx.ConnectError:
                # Nothing was sent: the next address the name has may answer.
                if index + 1 < len(addresses):
                    continue
                raise
            try:
                excerpt = bytearray()
                async for chunk in response.aiter_bytes():
                    excerpt += chunk
                    if len(excerpt) >= _EXCERPT_BYTES:
                        break
            finally:
                await response.aclose()
            text = excerpt.decode("utf-8", errors="replace")[:EXCERPT_CHARS]
            return OutboundResponse(status_code=response.status_code, body_excerpt=text)
    raise AssertionError("unreachable: addresses is never empty")


async def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    timeout: float,  # noqa: ASYNC109 - the delivery's one limit, applied with asyncio.timeout
    allow_localhost: bool,
) -> OutboundResponse:
    """POST ``body`` to ``url`` once, after checking it (``UnsafeUrl``). Any answer, 3xx to 5xx
    included, is returned; no answer within ``timeout`` seconds in all (resolution, connection,
    TLS, the whole response) or a failure to connect is an ``OutboundError``."""
    target = _target(url, allow_localhost=allow_localhost)
    try:
        async with asyncio.timeout(timeout):
            addresses = await _addresses(target)
            return await _send(
                target, addresses, body, headers, timeout=timeout, tls=_tls_context()
            )
    except TimeoutError:
        raise OutboundError(f"no answer within {timeout:g} s") from None
    except httpx.TimeoutException:
        raise OutboundError(f"no answer within {timeout:g} s") from None
    except httpx.ConnectError as exc:
        raise OutboundError(f"cannot connect ({_reason(exc)})") from None
    except httpx.HTTPError as exc:
        raise OutboundError(f"the request failed ({_reason(exc)})") from None


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__
