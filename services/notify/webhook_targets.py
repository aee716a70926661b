"""Where a webhook may point: a public address, unless an operator allow-listed the network.

An admin who registers a webhook decides where notify sends HTTP requests from inside the
company's network. Without a check that reaches the cloud metadata service (169.254.169.254),
loopback admin ports and private hosts. A URL is refused if it carries credentials, if its host
is (or, once resolved, any of its addresses is) loopback, private, link-local, multicast,
reserved or unspecified — including the legacy spellings of an IPv4 address ("2130706433",
"0x7f.1") and IPv4 addresses inside IPv6 ones — unless it is in ``allowed``. The check runs at
registration and again before every send, after name resolution.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TargetRefused(ValueError):
    """The reason a webhook URL may not be used."""


def networks(cidrs: Sequence[str]) -> list[Network]:
    return [ipaddress.ip_network(cidr, strict=False) for cidr in cidrs]


def literal_address(host: str) -> IPAddress | None:
    """The address a host names by itself, in any spelling the resolver would accept; None for a name."""
    bare = host.strip("[]")
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    try:
        # inet_aton takes what browsers and resolvers take: 2130706433, 0x7f000001, 0177.1, 127.1.
        return ipaddress.IPv4Address(socket.inet_aton(bare))
    except OSError:
        return None


def why_not(address: IPAddress, allowed: Sequence[Network]) -> str | None:
    """What makes an address one a webhook may not reach ("a loopback address"), or None."""
    if any(address in network for network in allowed):
        return None
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo or (None, None))[1]
        if embedded is not None:
            return why_not(embedded, allowed)
    for kind in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private"):
        if getattr(address, f"is_{kind}"):
            return f"a {kind.replace('_', '-')} address"
    if not address.is_global:
        return "not a public address"
    return None


def check_url(url: str, allowed: Sequence[Network]) -> str:
    """The URL's host once its form is acceptable (http or https, no credentials); else TargetRefused."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("a webhook URL must be http or https")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("a webhook URL may not carry credentials; the signature authenticates notify")
    host = parts.hostname
    if not host:
        raise TargetRefused("a webhook URL needs a host")
    address = literal_address(host)
    if address is not None and (reason := why_not(address, allowed)):
        raise TargetRefused(f"{address} is {reason}")
    return host


async def resolve_and_check(url: str, allowed: Sequence[Network], *, must_resolve: bool) -> None:
    """Check the URL and every address its host resolves to; a name that does not resolve is refused
    only if ``must_resolve`` (at send time: it cannot be reached anyway)."""
    host = check_url(url, allowed)
    if literal_address(host) is not None:
        return
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        if must_resolve:
            raise TargetRefused(f"{host} does not resolve") from None
        return
    for *_, sockaddr in found:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if reason := why_not(address, allowed):
            raise TargetRefused(f"{host} resolves to {address}, {reason}")
