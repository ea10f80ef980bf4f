"""Where outbound webhooks may go: public http(s) addresses only, so an endpoint's URL cannot turn
the worker into a way inside (a cloud metadata service, a database on localhost, the office LAN).

The rule is checked when an endpoint is registered and again before every post, since DNS can
change. A post then goes to the very address that was checked — the URL's host is replaced by
it, with the name kept in the Host header and for TLS (SNI and certificate checks) — so a
resolver cannot answer the check with a public address and the connection with a private one.
``TOLLGATE_WEBHOOK_ALLOW_PRIVATE`` lifts the address rule for local development and tests.
"""

import asyncio
import socket
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, IPv6Network, ip_address

import httpx

SCHEMES = frozenset({"http", "https"})
# NAT64's well-known prefix (RFC 6052): the last 32 bits are the IPv4 address reached.
NAT64 = IPv6Network("64:ff9b::/96")

IPAddress = IPv4Address | IPv6Address


class TargetRefused(Exception):
    """The URL may not receive webhooks (its scheme, or an address it names or resolves to):
    sending again cannot help."""


class TargetUnresolved(Exception):
    """The URL's host has no address now (DNS may answer later)."""


@dataclass(frozen=True)
class Target:
    """How to post to an endpoint: the URL to connect to, and what keeps the host's name."""

    url: httpx.URL
    headers: dict[str, str] = field(default_factory=dict)
    extensions: dict[str, str] = field(default_factory=dict)


def refusal(address: IPAddress) -> str | None:
    """Why a webhook may not be posted to ``address``, or None if it may. An IPv6 address that
    carries an IPv4 one (IPv4-mapped, 6to4, NAT64) is judged by the IPv4 address it reaches."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        reason = refusal(embedded)
        return f"{reason} ({embedded} inside {address})" if reason else None
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("special-purpose", not address.is_global),
    )
    return next((f"a {name} address" for name, hit in checks if hit), None)


def _embedded_ipv4(address: IPAddress) -> IPv4Address | None:
    if isinstance(address, IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None


async def resolve(url: str, *, allow_private: bool) -> Target:
    """The target a webhook to ``url`` is posted to. TargetRefused for a scheme other than
    http(s) or, unless ``allow_private``, for a host that is or resolves to any address
    ``refusal`` names; TargetUnresolved when the host has no address."""
    parsed = httpx.URL(url)
    if parsed.scheme not in SCHEMES or not parsed.raw_host:
        raise TargetRefused(f"only http and https URLs with a host receive webhooks, not {url!r}")
    if allow_private:
        return Target(parsed)
    host = parsed.raw_host.decode("ascii")
    addresses = await _addresses(host, parsed.port or (443 if parsed.scheme == "https" else 80))
    for address in addresses:
        reason = refusal(address)
        if reason is not None:
            raise TargetRefused(f"{host} is {reason}; webhooks go to public addresses only")
    return pinned(parsed, addresses[0])


def pinned(url: httpx.URL, address: IPAddress) -> Target:
    """``url`` with its host replaced by ``address``; the name stays in the Host header and is
    what TLS presents (SNI) and verifies the certificate against."""
    host = url.raw_host.decode("ascii")
    if _literal(host) is not None:
        return Target(url)
    return Target(
        url.copy_with(host=str(address)),
        headers={"Host": url.netloc.decode("ascii")},
        extensions={"sni_hostname": host} if url.scheme == "https" else {},
    )


async def _addresses(host: str, port: int) -> list[IPAddress]:
    literal = _literal(host)
    if literal is not None:
        return [literal]
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise TargetUnresolved(f"{host} does not resolve ({exc.strerror})") from None
    addresses = list(dict.fromkeys(ip_address(info[4][0]) for info in found))
    if not addresses:
        raise TargetUnresolved(f"{host} has no address")
    return addresses


def _literal(host: str) -> IPAddress | None:
    try:
        return ip_address(host)
    except ValueError:
        return None
